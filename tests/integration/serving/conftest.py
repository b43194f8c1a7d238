"""Fixtures for predictor tests: one real tiny model per session, real predictor processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess

StartPredictor = Callable[..., PredictorProcess]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


@pytest.fixture
def start_predictor(tmp_path: Path) -> Iterator[StartPredictor]:
    """Start predictors with the given flags; every one is stopped after the test."""
    started: list[PredictorProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> PredictorProcess:
        log = tmp_path / f"predictor-{len(started)}.log"
        args = ("--cache-dir", str(tmp_path / "cache"), *args)
        predictor = PredictorProcess(log, *args, env=env)
        started.append(predictor)
        return predictor

    yield start
    for predictor in started:
        predictor.stop()


@pytest.fixture(scope="module")
def ready_predictor(
    tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PredictorProcess]:
    """A predictor serving the tiny model with LiteRT int8 (its manifest default), shared by a
    module's tests that only read from it."""
    folder = tmp_path_factory.mktemp("shared-predictor")
    predictor = PredictorProcess(
        folder / "predictor.log",
        "--cache-dir",
        str(folder / "cache"),
        "--model-uri",
        str(tiny_model.store_root / tiny_model.name),
    )
    try:
        predictor.wait_ready()
        yield predictor
    finally:
        predictor.stop()
