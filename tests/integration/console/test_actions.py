"""Kubernetes specifics of the mutations: the objects and fields they touch, undo on a half-failed
deploy, RBAC answers shown plainly. What every backend does is in tests/integration/contract."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from console.backends.kubernetes.actions import KubernetesActions
from console.backends.kubernetes.rollout import Phase, history, rollout_status
from console.model import DeployRequest
from console.profile import StoreSettings, load_profile
from serving.store import ModelStore
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.versions import describe, make_version


@pytest.fixture
def profile(hdfs_root: str, tmp_path: Any) -> Any:
    """The kwok profile with a store of its own on the real HDFS, holding digits v1 and v2."""
    store = ModelStore(hdfs_root)
    source = make_version(tmp_path / "version")
    for _ in range(2):
        store.publish("digits", source, describe)
    return dataclasses.replace(load_profile("kwok"), store=StoreSettings(root=hdfs_root))


@pytest.fixture
def actions(k8s_cluster: K8sCluster, profile: Any) -> KubernetesActions:
    return KubernetesActions(k8s_cluster.api_client("admin"), profile, user="alice")


def read(actions: KubernetesActions, namespace: str, name: str) -> dict[str, Any]:
    return actions._read(namespace, name)


def wait_complete(actions: KubernetesActions, namespace: str, name: str) -> Any:
    def complete() -> Any:
        deployment = read(actions, namespace, name)
        replicasets = json.loads(actions.apps.list_namespaced_replica_set(
            namespace, _preload_content=False).data)["items"]  # fmt: skip
        status = rollout_status(deployment, replicasets, [])
        return (status, replicasets) if status.phase is Phase.COMPLETE else None

    return poll_until(f"{name} rolled out", complete, timeout=90)


def test_deploy_creates_the_predictor_objects_after_checking_the_store(
    actions: KubernetesActions, k8s_namespace: str
) -> None:
    missing = actions.deploy(DeployRequest("digits", "digits", 9), k8s_namespace)
    assert not missing.ok
    assert "version 9 of model 'digits' not found" in missing.message
    assert "--no-verify" in missing.message

    dry = actions.deploy(DeployRequest("digits", "digits", 1), k8s_namespace, dry_run=True)
    assert dry.ok
    assert dry.dry_run
    assert dry.changes == ("+ Deployment/digits", "+ Service/digits", "+ Ingress/digits")
    assert actions.apps.list_namespaced_deployment(k8s_namespace).items == []

    done = actions.deploy(DeployRequest("digits", "digits", 1, replicas=1), k8s_namespace)
    assert done.ok, done.message
    status, _ = wait_complete(actions, k8s_namespace, "digits")
    assert status.desired == 1
    deployment = read(actions, k8s_namespace, "digits")
    assert deployment["metadata"]["annotations"]["kubernetes.io/change-cause"] == (
        "deploy digits v1 by alice via fleetdeck"
    )
    assert actions.core.read_namespaced_service("digits", k8s_namespace)
    again = actions.deploy(DeployRequest("digits", "digits", 1), k8s_namespace)
    assert not again.ok
    assert "use `fleetdeck rollout`" in again.message


def test_rollout_and_rollback_change_versions_and_say_who(
    actions: KubernetesActions, k8s_namespace: str
) -> None:
    assert actions.deploy(DeployRequest("digits", "digits", 1, replicas=1), k8s_namespace).ok
    wait_complete(actions, k8s_namespace, "digits")

    dry = actions.rollout(k8s_namespace, "digits", 2, dry_run=True)
    assert dry.ok
    assert dry.message.startswith("would roll")
    assert any('fleetdeck.io/model-version: "1" -> "2"' in c for c in dry.changes)
    assert (
        read(actions, k8s_namespace, "digits")["metadata"]["labels"]["fleetdeck.io/model-version"]
        == "1"
    )
    assert (
        "version 7 of model 'digits' not found"
        in actions.rollout(k8s_namespace, "digits", 7).message
    )

    assert actions.rollout(k8s_namespace, "digits", 2).ok
    _, replicasets = wait_complete(actions, k8s_namespace, "digits")
    deployment = read(actions, k8s_namespace, "digits")
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["FLEETDECK_MODEL_URI"].endswith("/digits/2")
    assert [r.model_version for r in history(deployment, replicasets)] == ["1", "2"]

    back = actions.rollback(k8s_namespace, "digits")
    assert back.ok, back.message
    _, replicasets = wait_complete(actions, k8s_namespace, "digits")
    revisions = history(read(actions, k8s_namespace, "digits"), replicasets)
    assert [(r.number, r.model_version) for r in revisions] == [(2, "2"), (3, "1")]
    assert revisions[-1].change_cause == "rollback to revision 1 by alice via fleetdeck"


def test_delete_removes_the_deployment_with_its_service_and_route(
    actions: KubernetesActions, k8s_namespace: str
) -> None:
    assert actions.deploy(DeployRequest("digits", "digits", 1, replicas=1), k8s_namespace).ok
    dry = actions.delete(k8s_namespace, "digits", dry_run=True)
    assert dry.changes == ("- Deployment/digits", "- Service/digits", "- Ingress/digits")
    assert read(actions, k8s_namespace, "digits")
    assert actions.delete(k8s_namespace, "digits").ok
    assert actions.networking.list_namespaced_ingress(k8s_namespace).items == []
    gone = actions.delete(k8s_namespace, "digits")
    assert not gone.ok
    assert gone.message.startswith("404")


def test_forbidden_actions_come_back_as_plain_403_messages(
    k8s_cluster: K8sCluster, k8s_namespace: str, profile: Any, actions: KubernetesActions
) -> None:
    assert actions.deploy(DeployRequest("digits", "digits", 1, replicas=1), k8s_namespace).ok
    viewer = KubernetesActions(k8s_cluster.api_client("viewer"), profile, user="victor")
    refused = viewer.scale(k8s_namespace, "digits", 5)
    assert not refused.ok
    assert refused.message.startswith("403 Forbidden")
    assert 'User "viewer" cannot patch resource "deployments"' in refused.message
    oncall = KubernetesActions(k8s_cluster.api_client("oncall"), profile, user="olga")
    assert oncall.scale(k8s_namespace, "digits", 2).ok


def test_a_deploy_that_fails_half_way_leaves_nothing_behind(
    k8s_cluster: K8sCluster, k8s_namespace: str, profile: Any
) -> None:
    # The test cluster has no Gateway API installed: the HTTPRoute, created last, is refused.
    from console.profile import RouteSettings

    gateway = dataclasses.replace(profile, route=RouteSettings(kind="HTTPRoute", gateway="gw"))
    actions = KubernetesActions(k8s_cluster.api_client("admin"), gateway, user="alice")
    failed = actions.deploy(DeployRequest("digits", "digits", 1), k8s_namespace)
    assert not failed.ok
    assert failed.message.startswith("404")
    assert "nothing was kept" in failed.message
    assert actions.apps.list_namespaced_deployment(k8s_namespace).items == []
    assert actions.core.list_namespaced_service(k8s_namespace).items == []
