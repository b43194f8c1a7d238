"""fleetdeck training: the code that runs inside a training pod (data, model, fit, export)."""

__version__ = "0.1.0"
