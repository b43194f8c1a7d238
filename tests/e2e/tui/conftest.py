"""Fixtures the deck's metrics tests share: one tiny real model, and collectors stopped after
each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.metrics import MetricsCollector
from tests.support.models import TinyModel, train_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


@pytest.fixture
def collectors() -> Iterator[list[MetricsCollector]]:
    """Collectors a test starts; each is stopped when the test ends."""
    started: list[MetricsCollector] = []
    yield started
    for collector in started:
        collector.stop()
