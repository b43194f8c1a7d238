"""Smoke tests proving the test cluster is a real Kubernetes control plane with KWOK nodes.

Every wait is a bounded poll (``poll_until``); nothing asserts on elapsed time. The API server
restart test comes last in this file because it briefly takes the API server away.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.k8s_objects import apps, bare_pod, batch, core, deployment

GPU_NODES = {"kwok-gpu-0", "kwok-gpu-1"}
GPU_TOLERATION = {
    "key": "nvidia.com/gpu",
    "operator": "Equal",
    "value": "present",
    "effect": "NoSchedule",
}


# ----- helpers -----------------------------------------------------------------------------


def gpu_job(name: str, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {
                            "name": "train",
                            "image": "trainer:1",
                            "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        }
                    ],
                },
            },
        },
    }


def ready_pods(k8s: K8sCluster, namespace: str, selector: str) -> list[Any]:
    pods = core(k8s).list_namespaced_pod(namespace, label_selector=selector).items
    return [
        p
        for p in pods
        if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]


def revision(obj: Any) -> str | None:
    """The ``deployment.kubernetes.io/revision`` annotation of a Deployment or ReplicaSet."""
    annotations = obj.metadata.annotations or {}
    value = annotations.get("deployment.kubernetes.io/revision")
    return None if value is None else str(value)


def deployment_status(k8s: K8sCluster, namespace: str, name: str) -> Any:
    return apps(k8s).read_namespaced_deployment(name, namespace).status


def rollout_done(status: Any, replicas: int) -> bool:
    """What `kubectl rollout status` waits for: all updated, available, no old pods left."""
    return bool(
        status.updated_replicas == replicas
        and status.available_replicas == replicas
        and status.replicas == replicas
    )


def running_pod(k8s: K8sCluster, namespace: str, name: str) -> Any:
    core(k8s).create_namespaced_pod(namespace, bare_pod(name))
    return poll_until(
        f"pod {name} to run",
        lambda: (
            p
            if (p := core(k8s).read_namespaced_pod(name, namespace)).status.phase == "Running"
            else None
        ),
    )


class LogFollower:
    """Follows a container's log through the API server in a thread, line by line."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.lines: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self.pump, daemon=True)
        self.thread.start()

    def pump(self) -> None:
        buffer = b""
        try:
            for chunk in self.response.stream(1024):
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    self.lines.put(line.decode())
        except Exception:  # stop() cut the connection: the stream ends
            return

    def stop(self) -> None:
        # Closing the response while the thread blocks in a read deadlocks on the buffer's
        # lock; shutting the socket down first makes that read return.
        self.response.connection.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=30)
        self.response.release_conn()


def expect_lines(sink: queue.Queue[str], wanted: list[str], timeout: float = 30) -> None:
    """Read from ``sink`` until every wanted line arrived, in order."""
    remaining = list(wanted)
    try:
        while remaining:
            line = sink.get(timeout=timeout)
            if line == remaining[0]:
                remaining.pop(0)
    except queue.Empty:
        pytest.fail(f"log lines never arrived: {remaining}")


# ----- nodes -------------------------------------------------------------------------------


def test_cluster_has_three_cpu_nodes_and_two_tainted_gpu_nodes(k8s_cluster: K8sCluster) -> None:
    nodes = {n.metadata.name: n for n in core(k8s_cluster).list_node().items}
    cpu = [n for n in nodes.values() if n.metadata.labels.get("fleetdeck.io/pool") == "cpu"]
    gpu = [n for n in nodes.values() if n.metadata.labels.get("accelerator") == "nvidia-h100"]
    assert len(cpu) >= 3
    assert {n.metadata.name for n in gpu} == GPU_NODES
    for node in gpu:
        assert node.status.capacity["nvidia.com/gpu"] == "8"
        assert node.status.allocatable["nvidia.com/gpu"] == "8"
        assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in node.spec.taints)
    for node in nodes.values():
        ready = [c for c in node.status.conditions if c.type == "Ready"]
        assert ready, node.metadata.name
        assert ready[0].status == "True", node.metadata.name


# ----- deployments -------------------------------------------------------------------------


def test_deployment_gets_a_replicaset_and_ready_pods_on_kwok_nodes(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, deployment("iris", replicas=3))
    selector = "app.kubernetes.io/name=iris"

    pods = poll_until(
        "3 ready pods",
        lambda: p if len(p := ready_pods(k8s_cluster, k8s_namespace, selector)) == 3 else None,
    )

    replicasets = (
        apps(k8s_cluster).list_namespaced_replica_set(k8s_namespace, label_selector=selector).items
    )
    assert len(replicasets) == 1
    kwok_nodes = {n.metadata.name for n in core(k8s_cluster).list_node().items}
    assert all(p.spec.node_name in kwok_nodes - GPU_NODES for p in pods)
    status = poll_until(
        "deployment available",
        lambda: (
            s
            if (s := deployment_status(k8s_cluster, k8s_namespace, "iris")).available_replicas == 3
            else None
        ),
    )
    assert status.ready_replicas == 3


def test_template_change_creates_revision_two_with_revision_annotations(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    api = apps(k8s_cluster)
    api.create_namespaced_deployment(k8s_namespace, deployment("iris", image="predictor:1"))
    poll_until(
        "revision 1",
        lambda: revision(api.read_namespaced_deployment("iris", k8s_namespace)) == "1",
    )

    patch = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "predictor", "image": "predictor:2"}]}}
        }
    }
    api.patch_namespaced_deployment("iris", k8s_namespace, patch)

    poll_until(
        "revision 2",
        lambda: revision(api.read_namespaced_deployment("iris", k8s_namespace)) == "2",
    )
    replicasets = api.list_namespaced_replica_set(
        k8s_namespace, label_selector="app.kubernetes.io/name=iris"
    ).items
    revisions = {revision(rs): rs.spec.template.spec.containers[0].image for rs in replicasets}
    assert revisions == {"1": "predictor:1", "2": "predictor:2"}
    poll_until(
        "rollout to finish",
        lambda: rollout_done(deployment_status(k8s_cluster, k8s_namespace, "iris"), replicas=2),
    )


def test_pod_marked_to_fail_shows_its_waiting_reason_and_never_becomes_ready(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    broken = deployment("broken", replicas=1)
    broken["spec"]["template"]["metadata"]["annotations"] = {
        "fleetdeck.io/test-fail": "CrashLoopBackOff"
    }
    apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, broken)

    def waiting_reason() -> str | None:
        pods = (
            core(k8s_cluster)
            .list_namespaced_pod(k8s_namespace, label_selector="app.kubernetes.io/name=broken")
            .items
        )
        for pod in pods:
            for status in pod.status.container_statuses or []:
                if status.state.waiting is not None:
                    return str(status.state.waiting.reason)
        return None

    assert poll_until("a waiting reason", waiting_reason) == "CrashLoopBackOff"
    pod = (
        core(k8s_cluster)
        .list_namespaced_pod(k8s_namespace, label_selector="app.kubernetes.io/name=broken")
        .items[0]
    )
    assert pod.status.container_statuses[0].ready is False
    assert pod.status.container_statuses[0].restart_count > 0
    status = apps(k8s_cluster).read_namespaced_deployment("broken", k8s_namespace).status
    assert not status.ready_replicas


def test_pod_marked_image_pull_backoff_stays_pending_with_that_reason(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    name = "no-image"
    core(k8s_cluster).create_namespaced_pod(
        k8s_namespace, bare_pod(name, {"fleetdeck.io/test-fail": "ImagePullBackOff"})
    )

    pod = poll_until(
        "container statuses",
        lambda: (
            p
            if (
                p := core(k8s_cluster).read_namespaced_pod(name, k8s_namespace)
            ).status.container_statuses
            else None
        ),
    )

    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"


# ----- GPU jobs ----------------------------------------------------------------------------


def test_job_requesting_four_gpus_lands_on_a_gpu_node_and_completes(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    batch(k8s_cluster).create_namespaced_job(k8s_namespace, gpu_job("train", gpus=4))

    def job_pod() -> Any:
        pods = (
            core(k8s_cluster)
            .list_namespaced_pod(k8s_namespace, label_selector="job-name=train")
            .items
        )
        return pods[0] if pods and pods[0].spec.node_name else None

    pod = poll_until("the job's pod to be scheduled", job_pod)
    assert pod.spec.node_name in GPU_NODES
    poll_until(
        "the job's pod to run",
        lambda: (
            core(k8s_cluster).read_namespaced_pod(pod.metadata.name, k8s_namespace).status.phase
            in ("Running", "Succeeded")
        ),
    )
    job = poll_until(
        "the job to complete",
        lambda: (
            j
            if (
                j := batch(k8s_cluster).read_namespaced_job("train", k8s_namespace)
            ).status.succeeded
            == 1
            else None
        ),
    )
    conditions = {c.type: c.status for c in job.status.conditions}
    assert conditions.get("Complete") == "True"


def test_job_asking_for_more_gpus_than_any_node_has_stays_pending_insufficient(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    batch(k8s_cluster).create_namespaced_job(k8s_namespace, gpu_job("too-big", gpus=16))

    def unschedulable_message() -> str | None:
        for pod in (
            core(k8s_cluster)
            .list_namespaced_pod(k8s_namespace, label_selector="job-name=too-big")
            .items
        ):
            for condition in pod.status.conditions or []:
                if condition.type == "PodScheduled" and condition.reason == "Unschedulable":
                    return str(condition.message)
        return None

    message = poll_until("the scheduler's verdict", unschedulable_message)
    assert "Insufficient nvidia.com/gpu" in message
    pod = (
        core(k8s_cluster)
        .list_namespaced_pod(k8s_namespace, label_selector="job-name=too-big")
        .items[0]
    )
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name


# ----- logs --------------------------------------------------------------------------------


def test_following_pod_logs_streams_lines_appended_after_the_follow_began(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    running_pod(k8s_cluster, k8s_namespace, "trainer")
    k8s_cluster.append_log(k8s_namespace, "trainer", ["epoch 1 loss 0.9"])
    follower = LogFollower(
        core(k8s_cluster).read_namespaced_pod_log(
            "trainer", k8s_namespace, follow=True, _preload_content=False
        )
    )
    try:
        expect_lines(follower.lines, ["epoch 1 loss 0.9"])  # the follow is live from here on
        k8s_cluster.append_log(k8s_namespace, "trainer", ["epoch 2 loss 0.5", "epoch 3 loss 0.2"])
        expect_lines(follower.lines, ["epoch 2 loss 0.5", "epoch 3 loss 0.2"])
    finally:
        follower.stop()


def test_kubectl_logs_follow_streams_appended_lines(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    running_pod(k8s_cluster, k8s_namespace, "server")
    k8s_cluster.append_log(k8s_namespace, "server", ["listening on :8080"])
    follower = subprocess.Popen(
        [
            str(k8s_cluster.kubectl_binary),
            "--kubeconfig",
            str(k8s_cluster.kubeconfig),
            "--context",
            k8s_cluster.context_for("viewer"),
            "logs",
            "-f",
            "-n",
            k8s_namespace,
            "server",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert follower.stdout is not None
        for line in follower.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        expect_lines(lines, ["listening on :8080"])
        k8s_cluster.append_log(k8s_namespace, "server", ["GET /v2/health/ready 200"])
        expect_lines(lines, ["GET /v2/health/ready 200"])
    finally:
        follower.terminate()
        follower.wait(timeout=30)


# ----- RBAC --------------------------------------------------------------------------------


SCALE_TO_ONE = {"spec": {"replicas": 1}}


def test_viewer_gets_403_on_a_patch_but_may_read(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    from kubernetes.client.exceptions import ApiException

    apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, deployment("iris"))
    viewer = apps(k8s_cluster, "viewer")

    assert viewer.read_namespaced_deployment("iris", k8s_namespace).metadata.name == "iris"
    with pytest.raises(ApiException) as refused:
        viewer.patch_namespaced_deployment("iris", k8s_namespace, SCALE_TO_ONE)
    assert refused.value.status == 403


def test_oncall_may_patch_in_model_namespaces_and_not_elsewhere(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    from kubernetes.client.exceptions import ApiException

    other = k8s_cluster.create_namespace(f"{k8s_namespace}-plain", model=False)
    try:
        for namespace in (k8s_namespace, other):
            apps(k8s_cluster).create_namespaced_deployment(namespace, deployment("iris"))
        oncall = apps(k8s_cluster, "oncall")

        patched = oncall.patch_namespaced_deployment("iris", k8s_namespace, SCALE_TO_ONE)
        assert patched.spec.replicas == 1
        scaled = oncall.patch_namespaced_deployment_scale(
            "iris", k8s_namespace, {"spec": {"replicas": 3}}
        )
        assert scaled.spec.replicas == 3
        batch(k8s_cluster, "oncall").create_namespaced_job(k8s_namespace, gpu_job("sweep-1", 1))

        assert oncall.read_namespaced_deployment("iris", other).metadata.name == "iris"
        with pytest.raises(ApiException) as refused:
            oncall.patch_namespaced_deployment("iris", other, SCALE_TO_ONE)
        assert refused.value.status == 403
        with pytest.raises(ApiException) as refused_job:
            batch(k8s_cluster, "oncall").create_namespaced_job(other, gpu_job("sweep-1", 1))
        assert refused_job.value.status == 403
    finally:
        k8s_cluster.delete_namespace(other)


def test_each_user_has_a_kubeconfig_context(k8s_cluster: K8sCluster) -> None:
    for user in k8s_cluster.users:
        who = k8s_cluster.whoami(user)
        assert who == user


# ----- API server restart (keep last: it takes the API server away for a moment) ------------


class ResumingWatcher:
    """List, then watch from the list's resourceVersion; on errors reconnect; relist on 410.

    The shape the console's cache follows; here it proves the cluster lets a watch resume.
    """

    def __init__(self, k8s: K8sCluster, namespace: str) -> None:
        self.api = core(k8s)
        self.namespace = namespace
        self.seen: queue.Queue[str] = queue.Queue()
        self.reconnects = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        resource_version = self.relist()
        while not self.stopped.is_set():
            try:
                resource_version = self.watch_from(resource_version)
            except Exception as error:  # connection refused/reset while the server is away
                if getattr(error, "status", None) == 410:
                    resource_version = self.relist()
                self.reconnects += 1
                self.stopped.wait(0.5)

    def relist(self) -> str:
        while not self.stopped.is_set():
            try:
                listing = self.api.list_namespaced_config_map(self.namespace)
            except Exception:
                self.stopped.wait(0.5)
                continue
            for item in listing.items:
                self.seen.put(item.metadata.name)
            return str(listing.metadata.resource_version)
        return ""

    def watch_from(self, resource_version: str) -> str:
        from kubernetes import watch

        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            self.api.list_namespaced_config_map,
            self.namespace,
            resource_version=resource_version,
            timeout_seconds=30,
            _request_timeout=60,
        )
        for event in stream:
            obj = event["object"]
            resource_version = obj.metadata.resource_version
            if event["type"] == "ADDED":
                self.seen.put(obj.metadata.name)
            if self.stopped.is_set():
                break
        return resource_version

    def wait_for(self, name: str, timeout: float = 60) -> None:
        try:
            while self.seen.get(timeout=timeout) != name:
                pass
        except queue.Empty:
            pytest.fail(f"the watcher never saw {name}")


@pytest.fixture
def watcher(k8s_cluster: K8sCluster, k8s_namespace: str) -> Iterator[ResumingWatcher]:
    w = ResumingWatcher(k8s_cluster, k8s_namespace)
    w.thread.start()
    yield w
    w.stopped.set()


def test_watch_resumes_after_the_api_server_goes_down_and_comes_back(
    k8s_cluster: K8sCluster, k8s_namespace: str, watcher: ResumingWatcher
) -> None:
    def config_map(name: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}

    core(k8s_cluster).create_namespaced_config_map(k8s_namespace, config_map("before"))
    watcher.wait_for("before")

    k8s_cluster.stop_apiserver()
    poll_until("the watcher to notice", lambda: watcher.reconnects > 0)
    k8s_cluster.start_apiserver()
    core(k8s_cluster).create_namespaced_config_map(k8s_namespace, config_map("after"))

    watcher.wait_for("after")
