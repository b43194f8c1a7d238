"""The deck's screens, one module each."""
