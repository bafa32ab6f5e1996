"""Helpers shared by the tests (certificates, ...)."""
