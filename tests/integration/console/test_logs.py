"""Pod logs through the real API server (KWOK serves the files): tail, timestamps, several pods
merged with a prefix, and follow that sees lines written after it began."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from console.backends.base import BackendError, LogRequest
from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeployRequest
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until


@pytest.fixture
def two_pods(k8s_cluster: K8sCluster, k8s_namespace: str) -> tuple[KubernetesBackend, list[str]]:
    from kubernetes import client

    profile = load_profile("kwok")
    backend = KubernetesBackend(
        profile, api_client=k8s_cluster.api_client(), namespaces=[k8s_namespace], user="test"
    )
    result = backend.actions.deploy(
        DeployRequest("digits", "digits", 1, replicas=2), k8s_namespace, verify=False
    )
    assert result.ok, result.message
    core: Any = client.CoreV1Api(k8s_cluster.api_client())

    def running() -> Any:
        pods = core.list_namespaced_pod(k8s_namespace).items
        names = sorted(p.metadata.name for p in pods if p.status.phase == "Running")
        return names if len(names) == 2 else None

    pods = poll_until("two running pods", running)
    for pod in pods:
        k8s_cluster.append_log(k8s_namespace, pod, [f"{pod} line {i}" for i in range(5)])
    return backend, pods


def test_tail_and_timestamps_of_one_pod(two_pods: Any, k8s_namespace: str) -> None:
    backend, pods = two_pods
    lines = list(backend.logs(LogRequest([pods[0]], k8s_namespace, tail=2)))
    assert lines == [f"{pods[0]} line 3", f"{pods[0]} line 4"]
    stamped = list(backend.logs(LogRequest([pods[0]], k8s_namespace, tail=1, timestamps=True)))
    assert stamped[0].endswith(f"{pods[0]} line 4")
    assert stamped[0][:4].isdigit()


def test_several_pods_are_merged_with_a_prefix(two_pods: Any, k8s_namespace: str) -> None:
    backend, pods = two_pods
    lines = list(backend.logs(LogRequest(pods, k8s_namespace)))
    for pod in pods:
        assert [line for line in lines if line.startswith(f"[{pod}] ")] == [
            f"[{pod}] {pod} line {i}" for i in range(5)
        ]


def test_follow_streams_lines_written_after_it_began(
    two_pods: Any, k8s_namespace: str, k8s_cluster: K8sCluster
) -> None:
    backend, pods = two_pods
    seen: list[str] = []
    stop = threading.Event()
    follow = backend.logs(LogRequest(pods, k8s_namespace, follow=True, stop=stop))
    reader = threading.Thread(target=lambda: seen.extend(follow), daemon=True)
    reader.start()
    poll_until("the existing lines", lambda: len(seen) >= 10)
    k8s_cluster.append_log(k8s_namespace, pods[1], ["written later"])
    poll_until("the new line", lambda: f"[{pods[1]}] written later" in seen)
    stop.set()
    reader.join(timeout=30)
    assert not reader.is_alive()  # a stop ends the stream


def test_a_missing_pod_is_a_plain_error(two_pods: Any, k8s_namespace: str) -> None:
    backend, _ = two_pods
    with pytest.raises(BackendError, match='404 Not Found: pods "nope" not found'):
        list(backend.logs(LogRequest(["nope"], k8s_namespace)))
