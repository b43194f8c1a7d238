"""Fixtures for predictor tests: one real tiny model per session, real predictor processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess

__all__ = ["StartPredictor"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


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
