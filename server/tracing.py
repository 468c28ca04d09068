"""Placeholder: replaced in the tracing commit."""
