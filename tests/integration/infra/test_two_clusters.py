"""The two test clusters are independent control planes: their own etcd, API server and port.

The API server test comes last in this file because it briefly takes the second cluster's API
server away (never the first's: other sessions use it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.infra.k8s.cli import main as cluster_command
from tests.infra.k8s.layout import Layout
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.k8s_objects import apps, core, deployment


def test_the_first_cluster_keeps_its_paths_and_others_get_their_own(tmp_path: Path) -> None:
    first, second = Layout(tmp_path), Layout(tmp_path, "b")

    # profiles/kwok.toml and every engineer's shell point at these.
    assert first.kubeconfig == tmp_path / "run/cluster/kubeconfig"
    assert first.cluster_dir == tmp_path / "run/cluster/kwok/clusters/fleetdeck"
    assert first.lock_file == tmp_path / "run/cluster.lock"
    assert second.kubeconfig == tmp_path / "run/cluster-b/kubeconfig"
    assert second.cluster_dir == tmp_path / "run/cluster-b/kwok/clusters/fleetdeck-b"
    assert second.lock_file == tmp_path / "run/cluster-b.lock"
    assert second.kube_bin == first.kube_bin


@pytest.mark.parametrize("name", ["B", "-b", "b_2", "b.c", "x" * 54])
def test_a_cluster_name_must_be_a_dns_label(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        cluster_command(["status", f"--name={name}"])

    assert refused.value.code == 2
    assert "DNS-1123 label" in capsys.readouterr().err


def test_each_cluster_answers_on_its_own_port_with_its_own_data(
    k8s_cluster: K8sCluster, k8s_cluster_b: K8sCluster
) -> None:
    first, second = urlsplit(k8s_cluster.server), urlsplit(k8s_cluster_b.server)

    assert first.hostname == second.hostname == "127.0.0.1"
    assert first.port != second.port
    assert k8s_cluster.kubeconfig != k8s_cluster_b.kubeconfig
    # Each etcd made its own kube-system namespace: two control planes, not two views of one.
    uids = {
        core(k8s).read_namespace("kube-system").metadata.uid for k8s in (k8s_cluster, k8s_cluster_b)
    }
    assert len(uids) == 2
    for k8s in (k8s_cluster, k8s_cluster_b):
        nodes = {n.metadata.name for n in core(k8s).list_node().items}
        assert {"kwok-gpu-0", "kwok-gpu-1"} <= nodes
        namespaces = {n.metadata.name for n in core(k8s).list_namespace().items}
        assert {*k8s.model_namespaces, k8s.platform_namespace} <= namespaces


def test_an_object_created_in_one_cluster_is_not_in_the_other(
    k8s_cluster: K8sCluster, k8s_cluster_b: K8sCluster, k8s_namespace: str
) -> None:
    # The same namespace name in both, so only the cluster differs.
    k8s_cluster_b.create_namespace(k8s_namespace)
    try:
        apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, deployment("only-in-first"))

        assert apps(k8s_cluster).read_namespaced_deployment("only-in-first", k8s_namespace)
        assert apps(k8s_cluster_b).list_namespaced_deployment(k8s_namespace).items == []
    finally:
        k8s_cluster_b.delete_namespace(k8s_namespace)


def test_both_clusters_have_the_three_users_and_their_rbac(
    k8s_cluster: K8sCluster,
    k8s_cluster_b: K8sCluster,
    k8s_namespace: str,
    k8s_namespace_b: str,
) -> None:
    from kubernetes.client.exceptions import ApiException

    for k8s, namespace in ((k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b)):
        assert [k8s.whoami(user) for user in k8s.users] == ["admin", "oncall", "viewer"]
        with pytest.raises(ApiException) as refused:
            apps(k8s, "viewer").create_namespaced_deployment(namespace, deployment("iris"))
        assert refused.value.status == 403
        apps(k8s).create_namespaced_deployment(namespace, deployment("iris"))
        scaled = apps(k8s, "oncall").patch_namespaced_deployment(
            "iris", namespace, {"spec": {"replicas": 1}}
        )
        assert scaled.spec.replicas == 1


def test_stopping_the_second_api_server_leaves_the_first_answering(
    k8s_cluster: K8sCluster, k8s_cluster_b: K8sCluster
) -> None:
    k8s_cluster_b.stop_apiserver()
    try:
        assert not k8s_cluster_b.cluster.api_ready()
        # Polled, not asserted once: other sessions' tests may stop the first one for a moment.
        poll_until("the first cluster to answer", k8s_cluster.cluster.api_ready)
        assert core(k8s_cluster).read_namespace("kube-system").metadata.name == "kube-system"
        assert not k8s_cluster_b.cluster.api_ready()
    finally:
        k8s_cluster_b.start_apiserver()
    assert k8s_cluster_b.cluster.api_ready()
