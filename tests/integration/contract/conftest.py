"""The backend contract's fixtures: every backend under test, behind the one interface.

Parametrized by backend name; the local runtime (a later issue) adds itself to ``BACKENDS`` and
runs the same suite.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from console.model import DeploymentState
from serving.store import ModelStore
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import digits_store
from tests.support.versions import describe, make_version

__all__ = ["digits_store"]  # the local backend's trained store (session-scoped fixture)

BACKENDS = ["kubernetes", "local"]


@dataclasses.dataclass
class Fleet:
    backend: Any
    namespace: str

    def wait(
        self, name: str, state: DeploymentState = DeploymentState.AVAILABLE, timeout: float = 120
    ) -> Any:
        def reached() -> Any:
            row = self.backend.deployment(self.namespace, name)
            return row if row is not None and row.state is state else None

        return poll_until(f"{name} {state.value}", reached, timeout)

    def wait_gone(self, name: str) -> None:
        poll_until(f"{name} gone", lambda: self.backend.deployment(self.namespace, name) is None)

    def settle(self) -> None:
        """Let the cache see the last change (reads are eventually consistent, as k9s's)."""
        time.sleep(0.5)


@pytest.fixture(params=BACKENDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Fleet]:
    """A backend whose store holds digits versions 1 and 2, in a namespace of its own."""
    if request.param == "local":
        # Real processes need real models: a trained store, a temporary user, its own agent.
        from tests.integration.local.fixtures import open_local_fleet

        with open_local_fleet(request, tmp_path, user="alice") as (local, local_namespace):
            yield Fleet(local, local_namespace)
        return
    hdfs_root = request.getfixturevalue("hdfs_root")
    store = ModelStore(hdfs_root)
    source = make_version(tmp_path / "version")
    for _ in range(2):
        store.publish("digits", source, describe)
    if request.param == "kubernetes":
        from console.backends.kubernetes.backend import KubernetesBackend
        from console.profile import StoreSettings, load_profile

        cluster = request.getfixturevalue("k8s_cluster")
        namespace = request.getfixturevalue("k8s_namespace")
        profile = dataclasses.replace(load_profile("kwok"), store=StoreSettings(root=hdfs_root))
        backend = KubernetesBackend(
            profile, api_client=cluster.api_client("admin"), namespaces=[namespace], user="alice"
        )
        assert backend.start()
        try:
            yield Fleet(backend, namespace)
        finally:
            backend.cache.stop()
