"""Fixtures for training tests: the real digits sample data set, real training processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from training.data import write_sample

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class TrainingRun:
    returncode: int
    stdout: str
    stderr: str

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        """The machine-readable JSON lines, in order (optionally only one kind of event)."""
        parsed = [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]
        return [e for e in parsed if kind is None or e["event"] == kind]

    def human_lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line and not line.startswith("{")]


def run_training(
    *args: str,
    env: dict[str, str] | None = None,
    command: list[str] | None = None,
    timeout: float = 300,
) -> TrainingRun:
    done = subprocess.run(
        command or [sys.executable, "-m", "training", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return TrainingRun(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("data") / "digits"
    write_sample(str(path))
    return str(path)
