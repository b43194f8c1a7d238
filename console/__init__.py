"""fleetdeck console: the operator's deck (TUI and CLI) for fleets of model deployments."""

__version__ = "0.1.0"
