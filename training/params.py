"""Parsing of ``--param key=value`` and ``--grid key=v1,v2,...``, for training and the console.

Imports neither numpy nor TensorFlow (nor anything of training that does): the console parses
what a user typed with it, and must never pull TensorFlow in.
"""

from __future__ import annotations

import argparse

ParamValue = int | float | str

# The model's hyper-parameters (``--param``) and their defaults.
MODEL_PARAMS: dict[str, ParamValue] = {"width": 16, "depth": 2}
# Grid keys that are flags of ``python -m training``; every other key is a model --param.
FLAG_KEYS = {"learning_rate": "--learning-rate", "batch_size": "--batch-size", "epochs": "--epochs"}


class ParamError(argparse.ArgumentTypeError):
    """A ``--param`` or ``--grid`` that does not parse; the message says what was expected.
    (An ``ArgumentTypeError``, so argparse shows the message as it is.)"""


def parse_value(text: str) -> ParamValue:
    """An int if it is one, else a float if it is one, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_param(text: str) -> tuple[str, ParamValue]:
    """``key=value``, the value as :func:`parse_value` reads it."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ParamError(f"expected key=value, got {text!r}")
    return key, parse_value(value)


def parse_grid(text: str) -> tuple[str, list[ParamValue]]:
    """``key=v1,v2,...`` for a sweep: a known key and its values (empty ones skipped)."""
    key, sep, values = text.partition("=")
    if not sep or not key or not values:
        raise ParamError(f"expected key=v1,v2,..., got {text!r}")
    if key not in FLAG_KEYS and key not in MODEL_PARAMS:
        known = ", ".join([*FLAG_KEYS, *MODEL_PARAMS])
        raise ParamError(f"unknown grid key {key!r}; known: {known}")
    return key, [parse_value(v) for v in values.split(",") if v]
