"""The Kubernetes backend on the test cluster with a model store of the test's own."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from console.backends.kubernetes.backend import KubernetesBackend
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster


@contextlib.contextmanager
def kwok_backend(
    k8s_cluster: K8sCluster, namespace: str, store_root: str
) -> Iterator[KubernetesBackend]:
    """The ``kwok`` profile's backend on ``namespace``, its store at ``store_root``, started
    (its cache listed) and closed afterwards."""
    kwok = load_profile("kwok")
    backend = KubernetesBackend(
        dataclasses.replace(kwok, store=dataclasses.replace(kwok.store, root=store_root)),
        api_client=k8s_cluster.api_client(),
        namespaces=[namespace],
        user="test",
    )
    try:
        assert backend.start()
        yield backend
    finally:
        backend.close()
