"""The objects fleetdeck creates pass the real API server's validation and behave: predictor
pods run on CPU nodes, a GPU training Job lands on a GPU node."""

from __future__ import annotations

from typing import Any

import pytest

from console.backends.kubernetes.manifests import predictor_objects, training_job
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until


def create(cluster: K8sCluster, obj: dict[str, Any], *, dry_run: bool) -> Any:
    from kubernetes import client, utils

    return utils.create_from_dict(  # type: ignore[no-untyped-call]
        client.ApiClient(cluster.api_client().configuration),
        obj,
        dry_run="All" if dry_run else None,
    )


@pytest.fixture
def profile() -> Any:
    return load_profile("kwok")


def test_every_predictor_object_passes_server_side_validation(
    k8s_cluster: K8sCluster, k8s_namespace: str, profile: Any
) -> None:
    objects = predictor_objects(
        profile,
        k8s_namespace,
        "digits",
        "digits",
        3,
        gpus=1,
        cause="deploy digits v3 by test via fleetdeck",
    )
    assert [o["kind"] for o in objects] == ["Deployment", "Service", "Ingress"]
    for obj in objects:
        create(k8s_cluster, obj, dry_run=True)
    deployment = objects[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["FLEETDECK_MODEL_URI"].endswith("/fleetdeck/models/digits/3")
    assert env["FLEETDECK_MODEL_NAME"] == "digits"
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert deployment["metadata"]["labels"]["fleetdeck.io/model-version"] == "3"
    paths = [p["path"] for p in objects[2]["spec"]["rules"][0]["http"]["paths"]]
    assert paths == ["/v1/models/digits:predict", "/v1/models/digits", "/v2/models/digits"]


def test_a_deployed_predictor_gets_ready_pods_on_cpu_nodes(
    k8s_cluster: K8sCluster, k8s_namespace: str, profile: Any
) -> None:
    from kubernetes import client

    for obj in predictor_objects(
        profile, k8s_namespace, "photos", "digits", 1, cause="deploy by test"
    ):
        create(k8s_cluster, obj, dry_run=False)
    apps: Any = client.AppsV1Api(k8s_cluster.api_client())

    def ready() -> bool:
        status = apps.read_namespaced_deployment("photos", k8s_namespace).status
        return (status.ready_replicas or 0) == 2

    poll_until("photos ready", ready)
    core: Any = client.CoreV1Api(k8s_cluster.api_client())
    pods = core.list_namespaced_pod(k8s_namespace).items
    assert {p.spec.node_name.startswith("kwok-cpu-") for p in pods} == {True}


def test_a_gpu_training_job_lands_on_a_gpu_node_and_completes(
    k8s_cluster: K8sCluster, k8s_namespace: str, profile: Any
) -> None:
    from kubernetes import client

    job = training_job(
        profile,
        k8s_namespace,
        "train-digits-1",
        "digits",
        "hdfs://127.0.0.1:19870/datasets/digits",
        gpus=4,
        epochs=3,
        params={"width": 32},
        cause="train digits by test",
    )
    create(k8s_cluster, job, dry_run=False)
    core: Any = client.CoreV1Api(k8s_cluster.api_client())
    pod = poll_until(
        "a scheduled training pod",
        lambda: next(
            (p for p in core.list_namespaced_pod(k8s_namespace).items if p.spec.node_name), None
        ),
    )
    assert pod.spec.node_name.startswith("kwok-gpu-")
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["FLEETDECK_PARAM"] == "width=32"
    assert env["FLEETDECK_EPOCHS"] == "3"
    batch: Any = client.BatchV1Api(k8s_cluster.api_client())
    poll_until(
        "the job to succeed",
        lambda: batch.read_namespaced_job("train-digits-1", k8s_namespace).status.succeeded,
    )
