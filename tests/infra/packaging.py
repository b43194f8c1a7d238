"""fleetdeck as users install it: a wheel built from this checkout, and a fresh virtualenv that
sees the machine's heavy packages (TensorFlow, the kubernetes client, ...) but not fleetdeck."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build_wheel(folder: Path) -> Path:
    """``pip wheel`` of the checkout into ``folder/wheels``; the wheel's path."""
    wheels = folder / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
        check=True,
    )
    return next(wheels.glob("fleetdeck-*.whl"))


def isolated_venv(folder: Path) -> Path:
    """A fresh virtualenv under ``folder/venv`` without fleetdeck, like a base image."""
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    (site / "base-image-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv
