"""A wide batch keeps its connections: the API client's pool holds every request in flight.

urllib3 warns "Connection pool is full, discarding connection" for each connection returned
to a full pool: each was a new TCP and TLS handshake with the API server, made for nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from console.backends.kubernetes.backend import KubernetesBackend
from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.batch.conftest import kwok_profile

PARALLEL = 50


@pytest.fixture
def wide_backend(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> Iterator[KubernetesBackend]:
    """A backend opened for ``--max-parallel 50``, its watches running."""
    profile = kwok_profile(k8s_cluster, k8s_namespace, tmp_path / "store", "kwok-admin")
    backend = KubernetesBackend(profile, user="kwok-admin", parallel=PARALLEL)
    assert backend.start(), "the fleet cache did not sync"
    try:
        yield backend
    finally:
        backend.close()


def test_fifty_requests_in_flight_beside_the_watches_reuse_pooled_connections(
    wide_backend: KubernetesBackend, k8s_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    apps = client.AppsV1Api(wide_backend.api_client)
    start = threading.Barrier(PARALLEL)
    errors: list[BaseException] = []

    def one_request() -> None:
        start.wait()
        try:  # a short watch holds its connection for a second: all 50 are in flight at once
            # Not preloaded, the answer is urllib3's response, not the typed list.
            answer: Any = apps.list_namespaced_deployment(
                k8s_namespace, watch=True, timeout_seconds=1, _preload_content=False
            )
            answer.read()
            answer.release_conn()  # back to the pool, as every finished request goes
        except BaseException as exc:
            errors.append(exc)

    caplog.set_level(logging.WARNING, logger="urllib3")
    threads = [threading.Thread(target=one_request) for _ in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()] == []
