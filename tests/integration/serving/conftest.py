"""Fixtures for predictor tests: one real tiny model per session, real predictor processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess

__all__ = ["HTTP_SERVERS", "StartPredictor"]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


# The HTTP transports (--http-server): aiohttp is the default, httptools the lean one.
HTTP_SERVERS = ["aiohttp", "httptools"]


@pytest.fixture(scope="module", params=HTTP_SERVERS)
def ready_predictor(
    request: pytest.FixtureRequest, tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PredictorProcess]:
    """A predictor serving the tiny model with LiteRT int8 (its manifest default), shared by a
    module's tests that only read from it; one per transport."""
    http_server: str = request.param
    folder = tmp_path_factory.mktemp(f"shared-predictor-{http_server}")
    predictor = PredictorProcess(
        folder / "predictor.log",
        "--cache-dir",
        str(folder / "cache"),
        "--model-uri",
        str(tiny_model.store_root / tiny_model.name),
        http_server=http_server,
    )
    try:
        predictor.wait_ready()
        yield predictor
    finally:
        predictor.stop()
