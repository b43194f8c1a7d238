"""Where fleetdeck keeps its files: the XDG base folders, each with a ``fleetdeck`` folder.

Computed once here; everything else (profiles, the audit log, batch journals, the local
runtime's agents, the default model store) names a place below one of these. Read at each call,
not at import, so a test (or a user) pointing ``XDG_*`` elsewhere is followed.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "fleetdeck"


def _base(variable: str, default: tuple[str, ...]) -> Path:
    base = os.environ.get(variable) or str(Path.home().joinpath(*default))
    return Path(base) / APP


def config_home() -> Path:
    """``${XDG_CONFIG_HOME:-~/.config}/fleetdeck``: the user's profiles."""
    return _base("XDG_CONFIG_HOME", (".config",))


def state_home() -> Path:
    """``${XDG_STATE_HOME:-~/.local/state}/fleetdeck``: audit log, journals, agents."""
    return _base("XDG_STATE_HOME", (".local", "state"))


def data_home() -> Path:
    """``${XDG_DATA_HOME:-~/.local/share}/fleetdeck``: the local runtime's model store."""
    return _base("XDG_DATA_HOME", (".local", "share"))


def cache_home() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/fleetdeck``: what can be made again."""
    return _base("XDG_CACHE_HOME", (".cache",))


def runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR/fleetdeck``, or None: the specification gives it no default."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / APP if base else None
