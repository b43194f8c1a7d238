"""Fixtures for real autoscaling on the test cluster (see tests/support/autoscaling.py).

``autoscaling_pipeline`` (package): metrics-server and KEDA running beside the first test
cluster while this folder's tests run (then stopped, unless a person started them or another
session uses them: they cost CPU the rest of the suite should not pay).
``autoscaling_prometheus`` (package): a real Prometheus scraping the predictors that
``PodPredictors`` registers. ``tiny_model`` (session) and ``pod_predictor`` (function): a ready
real predictor of a tiny model per call, listening on every address, stopped after the test.
Another folder reuses them by importing these names into its own conftest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.autoscaling import DiscoveringPrometheus, running_pipeline, running_prometheus
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, train_tiny_model
from tests.support.predictor import PredictorProcess


@pytest.fixture(scope="package")
def autoscaling_pipeline(k8s_cluster: K8sCluster) -> Iterator[AutoscalingPipeline]:
    yield from running_pipeline(k8s_cluster)


@pytest.fixture(scope="package")
def autoscaling_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DiscoveringPrometheus]:
    yield from running_prometheus(tmp_path_factory.mktemp("prometheus"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("store"))


@pytest.fixture
def pod_predictor(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> Callable[[], PredictorProcess]:
    """Start a ready predictor of the tiny model on every address (a pod's IP leads to it)."""

    def start() -> PredictorProcess:
        predictor = start_predictor("--model-uri", str(tiny_model.version_dir), "--host", "0.0.0.0")
        predictor.wait_ready()
        return predictor

    return start
