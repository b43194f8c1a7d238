"""Placeholder: filled by the infrastructure work (issue 3)."""
