"""Rollout status, history and rollback semantics against a real control plane (KWOK nodes)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from console.backends.kubernetes.rollout import (
    CHANGE_CAUSE,
    Phase,
    RollbackError,
    history,
    plan_rollback,
    rollout_status,
)
from tests.infra.k8s_fixtures import K8sCluster, poll_until


class Deployments:
    """Raw JSON reads and writes through the official client, as the backend does them."""

    def __init__(self, cluster: K8sCluster, namespace: str) -> None:
        from kubernetes import client

        # Any: the client's type hints do not model _preload_content=False (raw JSON answers).
        self.apps: Any = client.AppsV1Api(cluster.api_client())
        self.core: Any = client.CoreV1Api(cluster.api_client())
        self.namespace = namespace

    def create(self, name: str, version: str, **template_annotations: str) -> None:
        self.apps.create_namespaced_deployment(
            self.namespace, body=_deployment(name, version, template_annotations)
        )

    def get(self, name: str) -> dict[str, Any]:
        answer = self.apps.read_namespaced_deployment(name, self.namespace, _preload_content=False)
        return dict(json.loads(answer.data))

    def objects(self, name: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
        replicasets = json.loads(
            self.apps.list_namespaced_replica_set(self.namespace, _preload_content=False).data
        )["items"]
        pods = json.loads(
            self.core.list_namespaced_pod(self.namespace, _preload_content=False).data
        )["items"]
        return self.get(name), replicasets, pods

    def status(self, name: str) -> Any:
        return rollout_status(*self.objects(name))

    def wait(self, name: str, phase: Phase, timeout: float = 90) -> Any:
        def reached() -> Any:
            status = self.status(name)
            return status if status.phase is phase else None

        return poll_until(f"{name} {phase}", reached, timeout)

    def set_version(self, name: str, version: str, cause: str, **annotations: str) -> None:
        patch = {
            "metadata": {"annotations": {CHANGE_CAUSE: cause}},
            "spec": {
                "template": {
                    "metadata": {
                        "labels": {"fleetdeck.io/model-version": version},
                        "annotations": annotations,
                    }
                }
            },
        }
        self.apps.patch_namespaced_deployment(name, self.namespace, body=patch)


def _deployment(name: str, version: str, annotations: dict[str, str]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "fleetdeck"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {CHANGE_CAUSE: f"deploy digits v{version}"}},
        "spec": {
            "replicas": 2, "progressDeadlineSeconds": 20,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {
                "metadata": {"labels": {**labels, "fleetdeck.io/model": "digits",
                                        "fleetdeck.io/model-version": version},
                             "annotations": annotations},
                "spec": {"containers": [{"name": "predictor",
                                         "image": "fleetdeck-predictor:test"}]},
            },
        },
    }  # fmt: skip


@pytest.fixture
def deployments(k8s_cluster: K8sCluster, k8s_namespace: str) -> Deployments:
    return Deployments(k8s_cluster, k8s_namespace)


def test_a_new_deployment_rolls_out_to_complete(deployments: Deployments) -> None:
    deployments.create("digits", "1")
    status = deployments.wait("digits", Phase.COMPLETE)
    assert (status.desired, status.updated, status.available, status.old) == (2, 2, 2, 0)
    assert status.revision == 1
    assert status.message == "deployment 'digits' successfully rolled out"


def test_history_lists_revisions_with_change_cause_and_model_version(
    deployments: Deployments,
) -> None:
    deployments.create("digits", "1")
    deployments.wait("digits", Phase.COMPLETE)
    deployments.set_version("digits", "2", "rollout digits v2 by test")
    status = deployments.wait("digits", Phase.COMPLETE)
    assert status.revision == 2
    revisions = history(*deployments.objects("digits")[:2])
    assert [(r.number, r.model_version) for r in revisions] == [(1, "1"), (2, "2")]
    assert [r.change_cause for r in revisions] == ["deploy digits v1", "rollout digits v2 by test"]
    assert revisions[-1].images == ("fleetdeck-predictor:test",)


def test_rollback_to_previous_and_to_a_revision_like_kubectl_undo(
    deployments: Deployments,
) -> None:
    deployments.create("digits", "1")
    deployments.wait("digits", Phase.COMPLETE)
    deployments.set_version("digits", "2", "rollout v2")
    deployments.wait("digits", Phase.COMPLETE)
    deployment, replicasets, _ = deployments.objects("digits")
    plan = plan_rollback(deployment, replicasets, cause="rollback to v1 by test via fleetdeck")
    assert (plan.from_revision, plan.to_revision) == (2, 1)
    assert plan.patch is not None
    deployments.apps.patch_namespaced_deployment("digits", deployments.namespace, body=plan.patch)
    status = deployments.wait("digits", Phase.COMPLETE)
    revisions = history(*deployments.objects("digits")[:2])
    assert status.revision == 3  # the old ReplicaSet is reused and becomes the newest
    assert [(r.number, r.model_version) for r in revisions] == [(2, "2"), (3, "1")]
    assert revisions[-1].change_cause == "rollback to v1 by test via fleetdeck"
    labels = deployments.get("digits")["spec"]["template"]["metadata"]["labels"]
    assert "pod-template-hash" not in labels

    again = plan_rollback(*deployments.objects("digits")[:2], to_revision=3)
    assert again.patch is None
    assert "already matches revision 3" in again.message
    with pytest.raises(RollbackError, match=r"no revision 9 \(revisions: 2, 3\)"):
        plan_rollback(*deployments.objects("digits")[:2], to_revision=9)


def test_rollback_is_refused_while_paused(deployments: Deployments) -> None:
    deployments.create("digits", "1")
    deployments.wait("digits", Phase.COMPLETE)
    deployments.apps.patch_namespaced_deployment(
        "digits", deployments.namespace, body={"spec": {"paused": True}}
    )
    assert deployments.wait("digits", Phase.PAUSED).phase is Phase.PAUSED
    with pytest.raises(RollbackError, match="is paused; resume it"):
        plan_rollback(*deployments.objects("digits")[:2])


def test_a_crashing_rollout_shows_its_pod_reason_then_fails_at_the_deadline(
    deployments: Deployments,
) -> None:
    deployments.create("digits", "1")
    deployments.wait("digits", Phase.COMPLETE)
    deployments.set_version(
        "digits", "2", "rollout v2 (crashes)", **{"fleetdeck.io/test-fail": "CrashLoopBackOff"}
    )

    def with_problem() -> Any:
        status = deployments.status("digits")
        return status if status.problems else None

    stuck = poll_until("a pod reason", with_problem)
    assert stuck.phase is Phase.PROGRESSING
    assert stuck.problems[0].reason == "CrashLoopBackOff"
    assert "CrashLoopBackOff" in stuck.message
    failed = deployments.wait("digits", Phase.FAILED, timeout=120)
    assert "exceeded its progress deadline: CrashLoopBackOff" in failed.message
    assert failed.available >= 1  # the old pods keep serving
