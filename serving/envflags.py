"""Command-line flags that also read ``FLEETDECK_*`` environment variables.

Containers and Jobs are configured through the environment, people through flags: every option
added with ``add_env_option`` takes its default from its variable (``--model-uri`` from
``FLEETDECK_MODEL_URI``), converted and checked exactly like the flag, and a flag given on the
command line wins. The variable is named in the option's help.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def env_name(flag: str) -> str:
    return "FLEETDECK_" + flag.lstrip("-").replace("-", "_").upper()


class EnvDefaultParser(argparse.ArgumentParser):
    def add_env_option(self, flag: str, **kwargs: Any) -> None:
        variable = env_name(flag)
        raw = os.environ.get(variable)
        kwargs["help"] = f"{kwargs.get('help', '')} [env {variable}]"
        if raw:
            if kwargs.get("action") == "append":
                kwargs["default"] = raw.split()
            elif kwargs.get("action") == "store_true":
                kwargs["default"] = raw.lower() in ("1", "true", "yes", "on")
            else:
                # argparse converts a string default through `type`, with the same checks.
                kwargs["default"] = raw
            kwargs.pop("required", None)
        self.add_argument(flag, **kwargs)


def number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def positive_int(text: str) -> int:
    value = int(number(text, int))
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(number(text, float))
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, got {text}")
    return value
