"""The local runtime's predictors, scraped directly through ``backend.endpoints``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from console.backends.local import LocalBackend
from console.metrics import MetricsCollector, source_for
from console.metrics.readings import DeploymentMetrics
from console.model import DeploymentState, DeployRequest
from console.profile import Profile
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import (
    DigitsStore,
    digits_store,
    local_backend,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)

__all__ = ["digits_store"]
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_store: DigitsStore
) -> Iterator[Profile]:
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = write_local_profile(digits_store.root)
    try:
        yield profile
    finally:
        stop_every_agent(profile)


@pytest.fixture
def backend(profile: Profile) -> Iterator[LocalBackend]:
    with local_backend(profile) as backend:
        yield backend


class GatewayLoad:
    """Predictions through the local gateway from one thread until stopped."""

    def __init__(self, url: str, body: Any) -> None:
        self.url, self.body = url, body
        self.stop = threading.Event()
        self.codes: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.wait(0.02):
                self.codes.append(session.post(self.url, json=self.body, timeout=30).status_code)

    def __enter__(self) -> GatewayLoad:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def test_the_local_runtimes_predictors_are_measured_per_deployment(
    profile: Profile, backend: LocalBackend, digits_store: DigitsStore
) -> None:
    result = backend.deploy(DeployRequest("digits", "digits", 1, "default", 2))
    assert result.ok, result.message
    poll_until(
        "digits available",
        lambda: (
            (row := backend.deployment("default", "digits"))
            and row.state is DeploymentState.AVAILABLE
        ),
        timeout=120,
    )
    url = f"{backend.gateway_url()}/models/digits/v1/models/digits:predict"
    body = {"instances": digits_store.images[:1].tolist()}
    assert profile.metrics.resolved_source("local") == "direct"
    collector = MetricsCollector(source_for(profile, backend), 6.0, interval_s=0.5).start()

    def busy() -> DeploymentMetrics | None:
        metrics = collector.snapshot().get(("default", "digits"))
        ok = metrics is not None and metrics.span_s > 2 and metrics.p99_ms is not None
        return metrics if ok else None

    try:
        with GatewayLoad(url, body) as load:
            measured = poll_until("load in the window", busy, timeout=60)
            top = subprocess.run(
                [sys.executable, "-m", "console", "top", "--json"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                env=os.environ.copy(),
                check=False,
            )
    finally:
        collector.stop()

    assert set(load.codes) == {200}
    assert measured.pods == 2  # both replicas' /metrics, summed
    assert measured.pods_failed == 0
    assert measured.requests_per_s > 0
    assert measured.error_percent == 0
    assert top.returncode == 0, top.stderr
    (row,) = json.loads(top.stdout)["deployments"]
    assert (row["namespace"], row["name"], row["pods"]) == ("default", "digits", 2)
    assert row["requests_per_s"] > 0
