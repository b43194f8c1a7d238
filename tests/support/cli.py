"""The CLI as a user runs it: a real ``fleetdeck`` process, its output captured."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The installed entry point, for tests where how the user starts it matters (its working folder).
ENTRY_POINT = Path(sys.executable).parent / "fleetdeck"


def run_fleetdeck(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 300,
    entry_point: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``fleetdeck ARGS`` to its end, with no terminal on stdin; ``env`` replaces the
    environment (default: this process's)."""
    command = [str(ENTRY_POINT)] if entry_point else [sys.executable, "-m", "console"]
    return subprocess.run(
        [*command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ if env is None else env),
        stdin=subprocess.DEVNULL,
    )
