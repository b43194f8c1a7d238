"""A CPU target scales a Deployment for real: KWOK simulates the pods' CPU, metrics-server
measures it, the HorizontalPodAutoscaler controller in kube-controller-manager decides."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support import k8s_objects
from tests.support.autoscaling import hpa_desired_replicas

NAME = "cpu-bound"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "fleetdeck"}
# The annotation KWOK reads a pod's simulated CPU from (tests/infra/kwok/autoscaling/).
SIMULATED_CPU = "fleetdeck.io/simulated-cpu"
REQUEST_MILLICORES = 100
TARGET_UTILIZATION = 50  # percent of the request
# What each of the first pods uses: 160 % of its request. The formula's ratio then lands between
# two counts (2 × 160 / 50 = 6.4), so the millicore or two metrics-server's rates may be off
# (two scrapes' timestamps) cannot change the count it gives.
BUSY_MILLICORES = 160
IDLE_MILLICORES = 1  # what a pod without the annotation uses (KWOK's usage default here)
FIRST_REPLICAS = 2
MAX_REPLICAS = 10


def millicores(quantity: str) -> float:
    """A CPU quantity as metrics-server writes it (``160m``, ``159876543n``, ``1``)."""
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity) * 1000


def deployment() -> dict[str, Any]:
    resources = {"requests": {"cpu": f"{REQUEST_MILLICORES}m", "memory": "64Mi"}}
    return k8s_objects.deployment(
        NAME, FIRST_REPLICAS, labels=LABELS, container={"resources": resources}
    )


def cpu_autoscaler() -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
            "minReplicas": FIRST_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": TARGET_UTILIZATION,
                        },
                    },
                }
            ],
            "behavior": {
                # Up at once to what the formula says (no stabilization, no rate limit that
                # would split the step); down only after a long quiet spell, which this test
                # never reaches.
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 15}],
                },
                "scaleDown": {"stabilizationWindowSeconds": 600},
            },
        },
    }


def test_simulated_cpu_above_target_scales_the_deployment_to_the_count_the_hpa_formula_gives(
    k8s_cluster: K8sCluster, k8s_namespace: str, autoscaling_pipeline: AutoscalingPipeline
) -> None:
    from kubernetes import client

    api = k8s_cluster.api_client()
    apps: Any = client.AppsV1Api(api)
    core: Any = client.CoreV1Api(api)
    scaling: Any = client.AutoscalingV2Api(api)
    namespace = k8s_namespace

    apps.create_namespaced_deployment(namespace, deployment())

    def running_pods() -> list[str] | None:
        pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/name={NAME}")
        names = [p.metadata.name for p in pods.items if p.status.phase == "Running"]
        return names if len(names) == FIRST_REPLICAS else None

    first = poll_until("the first pods running", running_pods, 120)
    # Only the first pods are busy: pods the autoscaler adds use next to nothing, so the total
    # stays what the first ones use and the count the formula gives is a fixed point.
    for pod in first:
        core.patch_namespaced_pod(
            pod, namespace, {"metadata": {"annotations": {SIMULATED_CPU: f"{BUSY_MILLICORES}m"}}}
        )
    busy = FIRST_REPLICAS * BUSY_MILLICORES
    expected = hpa_desired_replicas(
        FIRST_REPLICAS, 100 * BUSY_MILLICORES / REQUEST_MILLICORES, TARGET_UTILIZATION
    )
    assert expected == 7
    # Once there, the average is back within the tolerance of the target: no further step.
    settled = 100 * (busy + (expected - FIRST_REPLICAS) * IDLE_MILLICORES) / expected
    assert hpa_desired_replicas(expected, settled / REQUEST_MILLICORES, TARGET_UTILIZATION) == (
        expected
    )

    def measured_busy() -> bool:
        # metrics-server serves the first pods' new usage: the autoscaler's first look sees it.
        found = k8s_cluster.kubectl(
            "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        )
        usage = {
            item["metadata"]["name"]: millicores(item["containers"][0]["usage"]["cpu"])
            for item in json.loads(found)["items"]
        }
        return all(usage.get(pod, 0) >= 0.9 * BUSY_MILLICORES for pod in first)

    poll_until("metrics-server to measure the busy pods", measured_busy, 120)
    scaling.create_namespaced_horizontal_pod_autoscaler(namespace, cpu_autoscaler())
    seen: list[int] = []

    def scaled() -> Any:
        replicas = apps.read_namespaced_deployment(NAME, namespace).spec.replicas
        seen.append(replicas)
        hpa = scaling.read_namespaced_horizontal_pod_autoscaler(NAME, namespace)
        status = hpa.status
        return hpa if replicas == expected and status.current_replicas == expected else None

    poll_until(f"the autoscaler to scale {NAME} to {expected}", scaled, 240)

    def measured_at_target() -> Any:
        # A measurement taken with every new pod counted: the average near the target.
        hpa = scaling.read_namespaced_horizontal_pod_autoscaler(NAME, namespace)
        for metric in hpa.status.current_metrics or []:
            resource = metric.resource
            if resource is None or resource.current.average_utilization is None:
                continue
            utilization = resource.current.average_utilization
            if abs(utilization - TARGET_UTILIZATION) <= TARGET_UTILIZATION * 0.1:
                return hpa
        return None

    hpa = poll_until("the autoscaler to measure the scaled pods", measured_at_target, 120)
    assert hpa.status.desired_replicas == expected
    assert apps.read_namespaced_deployment(NAME, namespace).spec.replicas == expected
    assert max(seen) == expected, f"the autoscaler overshot: replicas seen {sorted(set(seen))}"
    events = core.list_namespaced_event(
        namespace, field_selector=f"involvedObject.name={NAME},reason=SuccessfulRescale"
    )
    messages = [event.message for event in events.items]
    assert any(f"New size: {expected}" in message for message in messages), messages
