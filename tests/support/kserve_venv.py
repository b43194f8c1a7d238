"""KServe's Python SDK in a virtualenv of its own, made once per machine and cached.

KServe pins its own versions of numpy, protobuf and friends, so it never enters the project's
environment: the KServe client test and the predictor benchmark run it as a separate process.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fleetdeck"
KSERVE_VENV = CACHE / "kserve-venv"
KSERVE_PACKAGES = ("kserve==0.21.0", "ai-edge-litert==2.3.0")
# Written last: a venv without it was interrupted while installing and is made again.
_COMPLETE = KSERVE_VENV / "fleetdeck-complete"


def kserve_python() -> Path:
    """The venv's interpreter, with KServe installed (installs it the first time, ~1.5 min)."""
    python = KSERVE_VENV / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "kserve-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time; the others wait and reuse
        installed = _COMPLETE.read_text() if _COMPLETE.exists() else ""
        if installed != " ".join(KSERVE_PACKAGES):
            shutil.rmtree(KSERVE_VENV, ignore_errors=True)
            print("installing KServe into", KSERVE_VENV, file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(KSERVE_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", *KSERVE_PACKAGES], check=True
            )
            _COMPLETE.write_text(" ".join(KSERVE_PACKAGES))
    return python
