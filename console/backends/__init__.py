"""Backends behind the console's one interface."""
