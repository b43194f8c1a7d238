"""What each user may do comes from the API server's own RBAC answers."""

from __future__ import annotations

from console.backends.kubernetes.access import AccessReviewer
from tests.infra.k8s_fixtures import K8sCluster


def test_viewer_may_read_but_not_change_deployments(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    viewer = AccessReviewer(k8s_cluster.api_client("viewer"))
    assert viewer.can("list", "deployments", k8s_namespace)
    assert viewer.can("get", "pods/log", k8s_namespace)
    assert not viewer.can("patch", "deployments", k8s_namespace)
    assert not viewer.can("create", "jobs", k8s_namespace)


def test_oncall_may_act_in_model_namespaces_only(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    oncall = AccessReviewer(k8s_cluster.api_client("oncall"))
    assert oncall.can("patch", "deployments", k8s_namespace)
    assert oncall.can("update", "deployments/scale", k8s_namespace)
    assert oncall.can("create", "jobs", k8s_namespace)
    assert not oncall.can("patch", "deployments", "platform")
    assert not oncall.can("delete", "namespaces")


def test_answers_are_cached_until_they_expire(k8s_cluster: K8sCluster, k8s_namespace: str) -> None:
    now = [0.0]
    admin = AccessReviewer(k8s_cluster.api_client("admin"), ttl=60, clock=lambda: now[0])
    first = admin.review("patch", "deployments", k8s_namespace)
    assert first.allowed
    assert admin.review("patch", "deployments", k8s_namespace) is first
    now[0] = 61.0
    assert admin.review("patch", "deployments", k8s_namespace) is not first
