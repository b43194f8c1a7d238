"""Scaling on requests per second through KEDA: load at the real predictors behind a
Deployment's pods scales it up, and it scales back down once the load stops.

The whole pipeline is real: predictor processes count the requests, Prometheus scrapes them,
KEDA's operator runs the ScaledObject's Prometheus trigger and its adapter serves the value as
an external metric, and the HorizontalPodAutoscaler controller that KEDA configured decides.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support import k8s_objects
from tests.support.autoscaling import (
    DiscoveringPrometheus,
    LoadDriver,
    PodPredictors,
    request_rate_query,
)
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

NAME = "digits"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "fleetdeck"}
PER_REPLICA = 5.0  # predictions per second one replica is meant to take
LOAD = 17.5  # predictions per second: 3.5 replicas' worth, half-way between two counts
MAX_REPLICAS = 6
SCALE_DOWN_WINDOW_S = 15


def deployment() -> dict[str, Any]:
    ports = [{"name": "http", "containerPort": 8080}]
    return k8s_objects.deployment(NAME, 1, labels=LABELS, container={"ports": ports})


def scaled_object(namespace: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": NAME, "labels": LABELS},
        "spec": {
            "scaleTargetRef": {"name": NAME},
            "pollingInterval": 5,
            "minReplicaCount": 1,
            "maxReplicaCount": MAX_REPLICAS,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {
                        "scaleUp": {
                            "stabilizationWindowSeconds": 0,
                            "policies": [{"type": "Percent", "value": 1000, "periodSeconds": 15}],
                        },
                        "scaleDown": {
                            "stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S,
                            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                        },
                    }
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": prometheus_url,
                        "query": request_rate_query(namespace, NAME, "30s"),
                        "threshold": str(PER_REPLICA),
                    },
                }
            ],
        },
    }


def test_load_at_the_predictors_scales_up_to_the_expected_count_and_back_down_after_it_stops(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    autoscaling_pipeline: AutoscalingPipeline,
    autoscaling_prometheus: DiscoveringPrometheus,
    pod_predictor: Callable[[], PredictorProcess],
    tiny_model: TinyModel,
) -> None:
    from kubernetes import client

    api = k8s_cluster.api_client()
    apps: Any = client.AppsV1Api(api)
    scaling: Any = client.AutoscalingV2Api(api)
    custom: Any = client.CustomObjectsApi(api)
    namespace = k8s_namespace
    prometheus = autoscaling_prometheus

    apps.create_namespaced_deployment(namespace, deployment())
    with PodPredictors(k8s_cluster, namespace, NAME, pod_predictor, prometheus) as predictors:
        poll_until(
            "Prometheus to scrape the first pod's predictor",
            lambda: len(prometheus.scraped_pods(namespace, NAME)) == 1,
            120,
        )
        custom.create_namespaced_custom_object(
            "keda.sh",
            "v1alpha1",
            namespace,
            "scaledobjects",
            scaled_object(namespace, prometheus.url),
        )
        hpa_name = f"keda-hpa-{NAME}"
        poll_until(
            "KEDA to create the HorizontalPodAutoscaler",
            lambda: (
                scaling.list_namespaced_horizontal_pod_autoscaler(
                    namespace, field_selector=f"metadata.name={hpa_name}"
                ).items
            ),
            120,
        )
        # For an AverageValue target the HPA asks for ceil(total / per-replica value).
        expected = math.ceil(LOAD / PER_REPLICA)
        assert expected == 4
        seen: list[int] = []

        def replicas() -> int:
            count = int(apps.read_namespaced_deployment(NAME, namespace).spec.replicas)
            seen.append(count)
            return count

        body = {"instances": [tiny_model.images[0].tolist()]}
        with LoadDriver(predictors.endpoints, tiny_model.name, body, LOAD) as load:
            poll_until(f"{NAME} scaled up to {expected}", lambda: replicas() == expected, 240)
            poll_until(
                "every new pod's predictor taking load and scraped",
                lambda: len(prometheus.scraped_pods(namespace, NAME)) == expected,
                120,
            )

            def settled() -> Any:
                # The autoscaler's latest look with every pod in: still the same count.
                hpa = scaling.read_namespaced_horizontal_pod_autoscaler(hpa_name, namespace)
                metrics = hpa.status.current_metrics or []
                total = prometheus.value(request_rate_query(namespace, NAME, "30s"))
                if not metrics or total is None or abs(total - LOAD) > 0.1 * LOAD:
                    return None
                return hpa if hpa.status.current_replicas == expected else None

            hpa = poll_until("the load measured with every pod in", settled, 120)
            assert hpa.status.desired_replicas == expected
            assert replicas() == expected
        assert load.failures == [], load.failures[:10]
        assert load.answered > 0
        assert max(seen) == expected, f"replicas seen: {sorted(set(seen))}"
        # Every pod the autoscaler added had a real predictor taking its share.
        assert len(predictors.served) >= expected

        poll_until(f"{NAME} scaled back down to 1", lambda: replicas() == 1, 240)
        poll_until("the removed pods' predictors stopped", lambda: len(predictors.pods()) == 1)
