"""Small helpers for tests on the real cluster: typed-as-Any API clients and plain objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.infra.k8s_fixtures import K8sCluster

VERSION = "fleetdeck.io/model-version"


def apps(k8s: K8sCluster, user: str = "admin") -> Any:
    from kubernetes import client

    return client.AppsV1Api(k8s.api_client(user))


def core(k8s: K8sCluster, user: str = "admin") -> Any:
    from kubernetes import client

    return client.CoreV1Api(k8s.api_client(user))


def batch(k8s: K8sCluster, user: str = "admin") -> Any:
    from kubernetes import client

    return client.BatchV1Api(k8s.api_client(user))


def bare_pod(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod of its own (no controller makes it), which KWOK runs."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"containers": [{"name": "main", "image": "predictor:1"}]},
    }


def job(name: str) -> dict[str, Any]:
    """A bare batch/v1 Job: the deck lists it among the training jobs."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "train", "image": "trainer:1"}],
                }
            },
        },
    }


def deployment(
    name: str,
    replicas: int = 2,
    *,
    image: str = "predictor:1",
    labels: dict[str, str] | None = None,
    container: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal Deployment whose pods KWOK runs; ``labels`` beside its name's, ``container``
    more fields of its one container (ports, resources)."""
    selector = {"app.kubernetes.io/name": name}
    every = {**selector, **(labels or {})}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": every},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": every},
                "spec": {
                    "containers": [{"name": "predictor", "image": image, **(container or {})}]
                },
            },
        },
    }


def predictor(
    name: str,
    *,
    version: str = "1",
    annotations: Mapping[str, str] | None = None,
    progress_deadline: int | None = None,
    replicas: int = 1,
) -> dict[str, Any]:
    """A predictor-like Deployment. Several replicas roll one pod at a time (KWOK readies a
    pod in about a second and caps ``fleetdeck.io/ready-after`` at that), so a rollout of
    five replicas takes several seconds: room for a test to act mid-wave."""
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "fleetdeck"}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {
            "metadata": {
                "labels": {**labels, "fleetdeck.io/model": "digits", VERSION: version},
                "annotations": dict(annotations or {}),
            },
            "spec": {"containers": [{"name": "predictor", "image": "fleetdeck-predictor:test"}]},
        },
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "labels": {**labels, "fleetdeck.io/model": "digits", VERSION: version},
        },
        "spec": spec,
    }
