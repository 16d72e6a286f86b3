"""Execution engines: ``cycle`` (register-level reference) and ``fast`` (production)."""
