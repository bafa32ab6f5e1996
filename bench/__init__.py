"""``make bench``: the project's own benchmark; every number is a ratio against a reference run alongside."""
