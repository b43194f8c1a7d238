"""The deck's widgets, one module each."""
