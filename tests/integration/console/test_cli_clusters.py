"""A profile naming two real clusters (the test cluster and cluster ``b``): ``--cluster``
chooses the one a command acts on; without it a profile of several clusters is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from kubernetes import client

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import Fleetdeck
from tests.support.k8s_objects import deployment


@pytest.fixture
def two_clusters(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    hdfs_root: str,
    tmp_path: Path,
) -> Fleetdeck:
    profiles = tmp_path / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "fleet.toml").write_text(
        'backend = "kubernetes"\n'
        f'[store]\nroot = "{hdfs_root}"\n'
        "[[clusters]]\n"
        f'name = "a"\ncontext = "kwok-admin"\nkubeconfig = "{k8s_cluster.kubeconfig}"\n'
        f'namespaces = ["{k8s_namespace}"]\n'
        "[[clusters]]\n"
        f'name = "b"\ncontext = "kwok-admin"\nkubeconfig = "{k8s_cluster_b.kubeconfig}"\n'
        f'namespaces = ["{k8s_namespace_b}"]\nread_only = true\n'
    )
    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
            "XDG_STATE_HOME": str(tmp_path / "state"),
            "FLEETDECK_PROFILE": "fleet",
        }
    )


def test_cluster_chooses_which_of_the_profiles_clusters_a_command_reads_and_acts_on(
    two_clusters: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    for cluster, namespace, name in (
        (k8s_cluster, k8s_namespace, "only-in-a"),
        (k8s_cluster_b, k8s_namespace_b, "only-in-b"),
    ):
        apps = client.AppsV1Api(cluster.api_client())
        apps.create_namespaced_deployment(namespace, deployment(name, replicas=0))  # type: ignore[arg-type]

    def listed(cluster: str) -> list[str]:
        result = two_clusters("ls", "--cluster", cluster, "-o", "name")
        assert result.code == 0, result.err
        return result.out.split()

    assert poll_until("cluster a's row", lambda: listed("a") == ["deployment/only-in-a"])
    assert listed("b") == ["deployment/only-in-b"]
    # The cluster's own settings come with it: b is read-only in the profile.
    refused = two_clusters("--cluster", "b", "scale", "only-in-b", "--replicas", "1")
    assert refused.code == 1
    assert "read-only" in refused.err
    assert two_clusters("--cluster", "a", "scale", "only-in-a", "--replicas", "1").code == 0


def test_a_profile_of_several_clusters_needs_one_named_and_an_unknown_one_is_refused(
    two_clusters: Fleetdeck,
) -> None:
    unnamed = two_clusters("ls")
    assert unnamed.code == 2  # bad usage: say which
    assert "names 2 clusters (a, b): choose one with --cluster NAME" in unnamed.err
    unknown = two_clusters("ls", "--cluster", "c")
    assert unknown.code == 2
    assert "has no cluster 'c' (its clusters: a, b)" in unknown.err
