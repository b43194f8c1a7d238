"""pytest fixtures for the real test cluster (see tests/infra/k8s and ``tests/infra/cluster``).

``k8s_cluster`` (session): uses the cluster ``tests/infra/cluster up`` started, or starts one
(building the binaries on first use) and stops it at session end only if it started it.
``k8s_cluster_b`` (session): the same for a second cluster beside it (``tests/infra/cluster up
--name b``): its own control plane, ports and kubeconfig, the same users, RBAC, namespaces and
nodes. Started only by the sessions that use it.
``k8s_namespace`` / ``k8s_namespace_b`` (function): a fresh model namespace per test in the first
or the second cluster, deleted afterwards.

The ``kubernetes`` package is imported inside the fixtures only, so collection works without it.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

from tests.infra.k8s.build import BuildError
from tests.infra.k8s.cluster import (
    DEFAULT_LOG_LINE,
    MODEL_NAMESPACES,
    PLATFORM_NAMESPACE,
    USERS,
    Cluster,
    ClusterError,
    context_for,
    cri_lines,
)
from tests.infra.k8s.layout import DEFAULT_NAME, default_layout
from tests.infra.require import missing_infra

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

T = TypeVar("T")

# The second cluster's name (``tests/infra/cluster up --name b``, run/cluster-b).
SECOND_CLUSTER_NAME = "b"


def poll_until(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Call ``check`` until it returns something other than None/False; fail after ``timeout``.

    Tests wait with this and never assert on elapsed time: a slow machine only waits longer.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


class K8sCluster:
    """What tests get: kubeconfig, per-user clients, log files, API server restarts."""

    users = USERS
    model_namespaces = MODEL_NAMESPACES
    # A namespace that exists but is not a model namespace: oncall may only read there.
    platform_namespace = PLATFORM_NAMESPACE

    def __init__(self, cluster: Cluster, started_here: bool) -> None:
        self.cluster = cluster
        self.started_here = started_here
        self._clients: dict[str, ApiClient] = {}

    @property
    def name(self) -> str:
        """The cluster's name: ``fleetdeck`` for the first, ``b`` for the second."""
        return self.cluster.layout.name

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.kubeconfig

    @property
    def server(self) -> str:
        """The API server's URL (each cluster has its own port)."""
        url = self.cluster.server_url()
        if url is None:
            raise ClusterError(f"cluster {self.name} has no kubeconfig")
        return url

    @property
    def kubectl_binary(self) -> Path:
        return self.cluster.kubectl_binary

    def context_for(self, user: str) -> str:
        return context_for(user)

    def api_client(self, user: str = "admin") -> ApiClient:
        """A kubernetes ApiClient authenticated as ``user`` (cached per user; do not close)."""
        if user not in self._clients:
            from kubernetes import config

            # The kubernetes package leaves these loaders unannotated.
            self._clients[user] = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig), context=context_for(user), persist_config=False
            )
        return self._clients[user]

    def whoami(self, user: str) -> str:
        """Who the API server says ``user``'s context is (``kubectl auth whoami``)."""
        return self.kubectl(
            "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}", user=user
        )

    def kubectl(self, *args: str, user: str = "admin") -> str:
        return self.cluster.kubectl(*args, user=user)

    # ----- namespaces ----------------------------------------------------------------------

    def create_namespace(self, name: str, *, model: bool = True) -> str:
        """Create ``name``; a model namespace gets the oncall RoleBinding."""
        if model:
            self.cluster.apply_model_namespace(name)
        else:
            self.cluster.kubectl("create", "namespace", name)
        self.cluster.wait_for_default_service_account(name)
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete without waiting: the namespace controller finishes it in the background."""
        self.cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")
        shutil.rmtree(self.cluster.layout.logs_dir / name, ignore_errors=True)

    # ----- container logs ------------------------------------------------------------------

    def ensure_log_file(self, namespace: str, pod: str, container: str | None = None) -> Path:
        """Give the container a log file of its own and wait until the API server serves it.

        Call before following a pod's logs, so the follow reads this file and not the
        cluster-wide placeholder every other pod gets.
        """
        container = container or self._first_container(namespace, pod)
        path = self.cluster.log_file(namespace, pod, container)
        if path.exists():
            return path
        self.cluster.register_log_file(namespace, pod, container)
        poll_until(
            f"KWOK to serve the log file of {namespace}/{pod}/{container}",
            lambda: self._serves_own_log(namespace, pod, container),
        )
        return path

    def append_log(
        self, namespace: str, pod: str, lines: Sequence[str], container: str | None = None
    ) -> Path:
        """Append ``lines`` to the container's log (CRI format), as if the container wrote them."""
        path = self.ensure_log_file(namespace, pod, container)
        with path.open("a") as handle:
            handle.write(cri_lines(lines))
        return path

    def _first_container(self, namespace: str, pod: str) -> str:
        from kubernetes import client

        spec = client.CoreV1Api(self.api_client()).read_namespaced_pod(pod, namespace).spec
        if spec is None or not spec.containers:
            raise ClusterError(f"pod {namespace}/{pod} has no containers")
        return str(spec.containers[0].name)

    def _serves_own_log(self, namespace: str, pod: str, container: str) -> bool:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            text = client.CoreV1Api(self.api_client()).read_namespaced_pod_log(
                pod, namespace, container=container
            )
        except ApiException:
            # Not scheduled yet, or KWOK has not seen the Logs object yet.
            return False
        return DEFAULT_LOG_LINE not in str(text)

    # ----- API server restarts -------------------------------------------------------------

    def stop_apiserver(self) -> None:
        self.cluster.stop_apiserver()

    def start_apiserver(self) -> None:
        self.cluster.start_apiserver()

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver (etcd keeps the data); returns once it is ready."""
        self.cluster.restart_apiserver()

    @contextlib.contextmanager
    def frozen_apiserver(self) -> Iterator[None]:
        """kube-apiserver stopped with SIGSTOP inside the block (connections accepted, never
        answered), resumed after it whatever happens."""
        self.cluster.freeze_apiserver()
        try:
            yield
        finally:
            self.cluster.thaw_apiserver()

    def close(self) -> None:
        for api in self._clients.values():
            api.close()  # type: ignore[no-untyped-call]
        self._clients.clear()


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def running_cluster(name: str) -> Iterator[K8sCluster]:
    """The named cluster, started if it is not running; stopped afterwards only if started here."""
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        missing_infra("the python package 'kubernetes' (pip install 'kubernetes>=37')")
    cluster = Cluster(default_layout(name))
    which = "the test Kubernetes cluster" + ("" if name == DEFAULT_NAME else f" {name!r}")
    try:
        started = cluster.up()
    except BuildError as error:
        missing_infra(f"cannot build the Kubernetes test binaries: {first_line(error)}")
    except (ClusterError, OSError) as error:
        missing_infra(f"cannot start {which}: {first_line(error)}")
    handle = K8sCluster(cluster, started)
    try:
        yield handle
    finally:
        handle.close()
        if started:
            cluster.down()


@pytest.fixture(scope="session")
def k8s_cluster() -> Iterator[K8sCluster]:
    yield from running_cluster(DEFAULT_NAME)


@pytest.fixture(scope="session")
def k8s_cluster_b() -> Iterator[K8sCluster]:
    """A second cluster beside ``k8s_cluster``, for tests that act on two."""
    yield from running_cluster(SECOND_CLUSTER_NAME)


def namespace_name(test_name: str) -> str:
    """A valid, unique namespace name that still says which test made it."""
    stem = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


def fresh_namespace(k8s: K8sCluster, test_name: str) -> Iterator[str]:
    name = k8s.create_namespace(namespace_name(test_name), model=True)
    try:
        yield name
    finally:
        k8s.delete_namespace(name)


@pytest.fixture
def k8s_namespace(k8s_cluster: K8sCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh model namespace (oncall may act in it) for one test, deleted afterwards."""
    yield from fresh_namespace(k8s_cluster, request.node.name)


@pytest.fixture
def k8s_namespace_b(k8s_cluster_b: K8sCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh model namespace in the second cluster for one test, deleted afterwards."""
    yield from fresh_namespace(k8s_cluster_b, request.node.name)
