"""The fleetdeck predictor: fetch a model version from the store, verify, load, warm up, serve."""

__version__ = "0.1.0"
