"""A profile names several clusters; a profile with one [kubernetes] table stays one cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.profile import DEFAULT_CLUSTER, ProfileError, parse_profile

SINGLE = {
    "backend": "kubernetes",
    "kubernetes": {"context": "prod", "namespaces": ["models"]},
    "store": {"root": "hdfs://namenode:9870/models"},
}


def clusters_profile(*clusters: dict[str, object], **top: object) -> dict[str, object]:
    return {
        "backend": "kubernetes",
        "kubernetes": {"kubeconfig": "/etc/fleet/kubeconfig", "namespaces": ["models"]},
        "store": {"root": "hdfs://namenode:9870/models"},
        "clusters": list(clusters),
        **top,
    }


def test_a_profile_with_one_kubernetes_table_is_one_cluster_named_default() -> None:
    profile = parse_profile("prod", SINGLE, source=None)
    [cluster] = profile.clusters
    assert cluster.name == DEFAULT_CLUSTER
    assert cluster.kubernetes == profile.kubernetes
    assert (cluster.store, cluster.metrics, cluster.read_only) == (
        profile.store,
        profile.metrics,
        False,
    )


def test_the_local_runtime_has_no_clusters() -> None:
    assert parse_profile("local", {"backend": "local"}, source=None).clusters == ()


def test_each_cluster_takes_what_it_does_not_say_from_the_profile() -> None:
    profile = parse_profile(
        "fleet",
        clusters_profile(
            {"name": "eu-west", "context": "eu"},
            {
                "name": "us-east",
                "context": "us",
                "kubeconfig": "/etc/fleet/us.kubeconfig",
                "namespaces": ["models", "models-canary"],
                "read_only": True,
                "metrics": {"prometheus_url": "http://prometheus.us:9090"},
                "store": {"root": "hdfs://namenode-us:9870/models"},
            },
        ),
        source=None,
    )
    eu, us = profile.clusters
    assert (eu.name, eu.kubernetes.context) == ("eu-west", "eu")
    assert eu.kubernetes.kubeconfig == Path("/etc/fleet/kubeconfig")
    assert eu.kubernetes.namespaces == ("models",)
    assert (eu.store, eu.metrics, eu.read_only) == (profile.store, profile.metrics, False)
    assert us.kubernetes.kubeconfig == Path("/etc/fleet/us.kubeconfig")
    assert us.kubernetes.namespaces == ("models", "models-canary")
    assert us.read_only
    assert us.metrics.resolved_source("kubernetes") == "prometheus"
    assert us.store.root == "hdfs://namenode-us:9870/models"


def test_clusters_alone_need_no_kubernetes_table() -> None:
    data = clusters_profile({"name": "eu-west", "context": "eu"})
    del data["kubernetes"]
    [cluster] = parse_profile("fleet", data, source=None).clusters
    assert cluster.kubernetes.kubeconfig is None  # the client's default, as kubectl's
    assert cluster.kubernetes.namespaces == ()


@pytest.mark.parametrize(
    ("clusters", "message"),
    [
        ([{"context": "eu"}], "clusters[0].name: missing"),
        ([{"name": "EU_West", "context": "eu"}], "clusters[0].name: invalid cluster name"),
        ([{"name": "eu/west", "context": "eu"}], "clusters[0].name: invalid cluster name"),
        ([{"name": "eu-west"}], "clusters[0].context: missing"),
        ([{"name": "eu-west", "context": ""}], "clusters[0].context: expected"),
        (
            [{"name": "eu", "context": "a"}, {"name": "eu", "context": "b"}],
            "clusters[1].name: cluster 'eu' is named twice",
        ),
        ([{"name": "eu", "context": "a", "contxt": "b"}], "clusters[0].contxt: unknown key"),
        (
            [{"name": "eu", "context": "a", "metrics": {"source": "direct", "x": 1}}],
            "clusters[0].metrics.x: unknown key",
        ),
    ],
)
def test_a_bad_cluster_entry_is_named_with_what_to_fix(
    clusters: list[dict[str, object]], message: str
) -> None:
    with pytest.raises(ProfileError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_profile("fleet", clusters_profile(*clusters), source=None)


def test_clusters_are_only_for_kubernetes_profiles() -> None:
    with pytest.raises(ProfileError, match='clusters: only for backend = "kubernetes"'):
        parse_profile(
            "local", {"backend": "local", "clusters": [{"name": "a", "context": "b"}]}, source=None
        )


def test_a_profile_on_one_of_its_clusters_takes_that_clusters_settings() -> None:
    profile = parse_profile(
        "fleet",
        clusters_profile(
            {"name": "eu-west", "context": "eu"},
            {"name": "us-east", "context": "us", "read_only": True, "store": {"root": "/us"}},
        ),
        source=None,
    )
    us = profile.for_cluster("us-east")
    assert us.kubernetes is not None
    assert (us.kubernetes.context, us.store.root, us.read_only) == ("us", "/us", True)
    assert [c.name for c in us.clusters] == ["us-east"]
    with pytest.raises(ProfileError, match=r"no cluster 'asia' \(its clusters: eu-west, us-east\)"):
        profile.for_cluster("asia")


def test_a_session_on_a_profile_of_several_clusters_needs_one_named() -> None:
    from console.core.session import SessionRequest, is_read_only, on_cluster

    profile = parse_profile(
        "fleet",
        clusters_profile(
            {"name": "eu-west", "context": "eu"},
            {"name": "us-east", "context": "us", "read_only": True},
        ),
        source=None,
    )
    with pytest.raises(ProfileError, match=r"names 2 clusters \(eu-west, us-east\): choose one"):
        on_cluster(profile, SessionRequest())
    assert on_cluster(profile, SessionRequest(cluster="eu-west")).clusters[0].name == "eu-west"
    assert is_read_only(profile, SessionRequest(cluster="us-east"))
    assert not is_read_only(profile, SessionRequest(cluster="eu-west"))
    single = parse_profile("prod", SINGLE, source=None)
    assert on_cluster(single, SessionRequest()) == single
