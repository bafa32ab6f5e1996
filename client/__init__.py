"""Lean gRPC client for the threshold filter on TF Serving (never imports tensorflow)."""
