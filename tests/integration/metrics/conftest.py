"""Fixtures for metrics tests: a real tiny model, real predictors, real client load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.metrics.load import Load
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess

StartLoad = Callable[[PredictorProcess, float], Load]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


@pytest.fixture
def serve(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> Callable[..., PredictorProcess]:
    """Start a ready predictor of the tiny model (extra flags allowed)."""

    def start(*flags: str) -> PredictorProcess:
        predictor = start_predictor("--model-uri", str(tiny_model.version_dir), *flags)
        predictor.wait_ready()
        return predictor

    return start


@pytest.fixture
def start_load(tiny_model: TinyModel) -> Iterator[StartLoad]:
    """Paced prediction requests to a predictor; every load stops after the test."""
    started: list[Load] = []
    body: dict[str, Any] = {"instances": [tiny_model.images[0].tolist()]}

    def start(predictor: PredictorProcess, rate: float) -> Load:
        load = Load(predictor.url, tiny_model.name, body, rate).start()
        started.append(load)
        return load

    yield start
    for load in started:
        load.stop()
