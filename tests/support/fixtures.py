"""Fixtures shared by every tier: real predictor processes, stopped after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.predictor import PredictorProcess

StartPredictor = Callable[..., PredictorProcess]


@pytest.fixture
def start_predictor(tmp_path: Path) -> Iterator[StartPredictor]:
    """Start predictors with the given flags (``http_server=``: the transport, else the
    default); every one is stopped after the test."""
    started: list[PredictorProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, http_server: str | None = None
    ) -> PredictorProcess:
        log = tmp_path / f"predictor-{len(started)}.log"
        args = ("--cache-dir", str(tmp_path / "cache"), *args)
        predictor = PredictorProcess(log, *args, env=env, http_server=http_server)
        started.append(predictor)
        return predictor

    yield start
    for predictor in started:
        predictor.stop()
