"""``fleetdeck changes`` and ``fleetdeck undo`` on a profile naming two real clusters (the test
cluster ``a`` and cluster ``b``): the timeline holds both clusters' changes, each named by its
cluster and its deployments as CLUSTER/NAMESPACE/NAME, ``--cluster`` narrows it to one; an undo
acts in the change's own cluster through that cluster's session (its RBAC), and its audit line
names that cluster and the change it undoes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from serving.store import ModelStore
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.changes import listed_changes as changes
from tests.support.changes import of_deployments, the
from tests.support.cli import Fleetdeck
from tests.support.clusters import InProfile, clusters_fleetdeck
from tests.support.k8s_objects import VERSION, apps
from tests.support.versions import describe, make_version

REVISION = "deployment.kubernetes.io/revision"
# Cluster a may be busy (a benchmark's thousands of Deployments): wait generously.
WAIT = 180.0


@pytest.fixture
def store(hdfs_root: str, tmp_path: Path) -> str:
    """The store with versions 1 and 2 of ``digits``."""
    source = make_version(tmp_path / "version")
    for _ in range(2):
        ModelStore(hdfs_root).publish("digits", source, describe)
    return hdfs_root


@pytest.fixture
def fleet(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    store: str,
    tmp_path: Path,
) -> Fleetdeck:
    """The CLI on profile ``fleet``: clusters a and b, admin in both, neither read-only."""
    return clusters_fleetdeck(
        tmp_path / "admin",
        [
            InProfile("a", k8s_cluster.kubeconfig, k8s_namespace),
            InProfile("b", k8s_cluster_b.kubeconfig, k8s_namespace_b),
        ],
        store=store,
    )


def deployment(cluster: K8sCluster, namespace: str) -> Any:
    return apps(cluster).read_namespaced_deployment("digits", namespace)


def model_version(cluster: K8sCluster, namespace: str) -> str:
    """The model version in digits' pod template."""
    return str(deployment(cluster, namespace).spec.template.metadata.labels[VERSION])


def at_revision(cluster: K8sCluster, namespace: str, revision: int) -> bool:
    """The deployment controller has made ``revision`` and the Deployment says so."""
    api = deployment(cluster, namespace)
    annotations = api.metadata.annotations or {}
    return (
        annotations.get(REVISION) == str(revision)
        and (api.status.observed_generation or 0) >= api.metadata.generation
    )


def deploy_digits(fleet: Fleetdeck, name: str, cluster: K8sCluster, namespace: str) -> None:
    """``fleetdeck --cluster NAME deploy digits`` (deploy acts on one cluster), at revision 1."""
    done = fleet("--cluster", name, "deploy", "digits", "--model", "digits", "--version", "1")
    assert done.code == 0, done.out + done.err
    poll_until(
        f"{name}/{namespace}/digits at revision 1",
        lambda: at_revision(cluster, namespace, 1),
        timeout=WAIT,
    )


def roll_out_in_b(fleet: Fleetdeck, cluster_b: K8sCluster, namespace_b: str) -> None:
    """Version 2 of digits in b only, named whole (digits is in both clusters)."""
    rolled = fleet("rollout", f"b/{namespace_b}/digits", "--version", "2")
    assert rolled.code == 0, rolled.out + rolled.err
    assert rolled.out.startswith(f"b/{namespace_b}/digits: ok"), rolled.out
    poll_until(
        f"b/{namespace_b}/digits at revision 2",
        lambda: at_revision(cluster_b, namespace_b, 2),
        timeout=WAIT,
    )


def test_changes_lists_both_clusters_changes_each_named_by_its_cluster(
    fleet: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    deploy_digits(fleet, "a", k8s_cluster, k8s_namespace)
    deploy_digits(fleet, "b", k8s_cluster_b, k8s_namespace_b)
    roll_out_in_b(fleet, k8s_cluster_b, k8s_namespace_b)

    listed = of_deployments(changes(fleet))
    assert [(c["kind"], c["cluster"]) for c in listed] == [
        ("rollout", "b"),  # newest first
        ("deploy", "b"),
        ("deploy", "a"),
    ], listed
    rollout = listed[0]
    assert (rollout["via_fleetdeck"], rollout["who"]) == (True, "admin")
    assert rollout["undo"] == "possible"
    assert rollout["deployments"] == [
        {
            "deployment": f"b/{k8s_namespace_b}/digits",
            "from": "digits v1 (rev 1)",
            "to": "digits v2 (rev 2)",
        }
    ]
    deploys = {c["cluster"]: c["deployments"] for c in listed if c["kind"] == "deploy"}
    assert deploys == {
        "a": [
            {
                "deployment": f"a/{k8s_namespace}/digits",
                "from": "(none)",
                "to": "digits v1 (rev 1)",
            }
        ],
        "b": [
            {
                "deployment": f"b/{k8s_namespace_b}/digits",
                "from": "(none)",
                "to": "digits v1 (rev 1)",
            }
        ],
    }
    # The table names each deployment by its cluster too.
    table = fleet("changes")
    assert table.code == 0, table.err
    (rollout_line,) = [line for line in table.out.splitlines() if line.startswith(rollout["id"])]
    assert f"b/{k8s_namespace_b}/digits" in rollout_line
    # -l spans both clusters: the same three changes.
    selected = changes(fleet, "-l", "fleetdeck.io/model=digits")
    assert [c["id"] for c in of_deployments(selected)] == [c["id"] for c in listed]

    # --cluster a: a session of cluster a alone, none of b's changes (nor b's namespace).
    only_a = of_deployments(changes(fleet, "--cluster", "a"))
    assert [c["kind"] for c in only_a] == ["deploy"], only_a
    assert only_a[0]["deployments"] == [
        {"deployment": f"{k8s_namespace}/digits", "from": "(none)", "to": "digits v1 (rev 1)"}
    ]
    assert rollout["id"] not in {c["id"] for c in only_a}
    assert not [c for c in only_a if k8s_namespace_b in str(c)]
    # --cluster b: b's two.
    only_b = of_deployments(changes(fleet, "--cluster", "b"))
    assert [c["kind"] for c in only_b] == ["rollout", "deploy"], only_b
    assert not [c for c in only_b if k8s_namespace in str(c)]


def test_undo_of_a_change_in_b_acts_in_b_only_and_its_audit_line_names_b(
    fleet: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    deploy_digits(fleet, "a", k8s_cluster, k8s_namespace)
    deploy_digits(fleet, "b", k8s_cluster_b, k8s_namespace_b)
    roll_out_in_b(fleet, k8s_cluster_b, k8s_namespace_b)
    rollout = the("rollout", of_deployments(changes(fleet)))
    assert rollout["cluster"] == "b"
    a_before = deployment(k8s_cluster, k8s_namespace)
    b_before = deployment(k8s_cluster_b, k8s_namespace_b)

    preview = fleet("undo", rollout["id"], "--dry-run")
    assert preview.code == 0, preview.out + preview.err
    assert f"b/{k8s_namespace_b}/digits: roll back to revision 1 (digits v1 (rev 1))" in (
        preview.err
    )
    assert deployment(k8s_cluster_b, k8s_namespace_b).metadata.generation == (
        b_before.metadata.generation
    )

    undone = fleet("undo", rollout["id"], "--yes")
    assert undone.code == 0, undone.out + undone.err
    assert f"undo {rollout['id']}: " in undone.err
    assert f"b/{k8s_namespace_b}/digits: roll back to revision 1 (digits v1 (rev 1))" in undone.err
    assert undone.out == f"b/{k8s_namespace_b}/digits: ok: rolled digits back to revision 1\n"
    poll_until(
        "version 1 in b's template again",
        lambda: model_version(k8s_cluster_b, k8s_namespace_b) == "1",
        timeout=WAIT,
    )
    poll_until(
        "b at revision 3",
        lambda: at_revision(k8s_cluster_b, k8s_namespace_b, 3),
        timeout=WAIT,
    )
    # Cluster a's digits (same name, same version) was not touched.
    a_after = deployment(k8s_cluster, k8s_namespace)
    assert a_after.metadata.generation == a_before.metadata.generation
    assert a_after.metadata.annotations[REVISION] == "1"
    assert model_version(k8s_cluster, k8s_namespace) == "1"

    audited = [e for e in fleet("audit", "-o", "json").json() if e["action"] == "rollback"]
    assert [
        (
            e.get("cluster"),
            e["targets"],
            e["parameters"].get("undoes"),
            e["parameters"].get("to_revision"),
            e["dry_run"],
        )
        for e in audited
        if not e["dry_run"]
    ] == [("b", [f"{k8s_namespace_b}/digits"], rollout["id"], 1, False)]
    undo = the("undo", changes(fleet))
    assert (undo["cluster"], undo["undoes"]) == ("b", rollout["id"])
    assert undo["deployments"] == [
        {
            "deployment": f"b/{k8s_namespace_b}/digits",
            "from": "digits v2 (rev 2)",
            "to": "digits v1 (rev 3)",
        }
    ]


def test_an_undo_in_a_cluster_where_the_user_only_views_is_refused_and_sends_nothing(
    fleet: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    store: str,
    tmp_path: Path,
) -> None:
    deploy_digits(fleet, "b", k8s_cluster_b, k8s_namespace_b)
    roll_out_in_b(fleet, k8s_cluster_b, k8s_namespace_b)
    # Another user's profile: admin in a, only a viewer in b.
    viewer = clusters_fleetdeck(
        tmp_path / "viewer",
        [
            InProfile("a", k8s_cluster.kubeconfig, k8s_namespace),
            InProfile("b", k8s_cluster_b.kubeconfig, k8s_namespace_b, context="kwok-viewer"),
        ],
        store=store,
    )
    # The viewer sees the rollout (from b's revisions: the audit log is the admin's).
    rollout = the("rollout", of_deployments(changes(viewer)))
    assert rollout["cluster"] == "b"
    assert rollout["deployments"][0]["deployment"] == f"b/{k8s_namespace_b}/digits"
    before = deployment(k8s_cluster_b, k8s_namespace_b)

    refused = viewer("undo", rollout["id"], "--yes")
    assert refused.code == 1, refused.out + refused.err
    assert (
        f"fleetdeck: forbidden: user 'viewer' may not patch deployments in namespace "
        f"{k8s_namespace_b}; nothing was sent (ask for a role that allows it)"
    ) in refused.err
    after = deployment(k8s_cluster_b, k8s_namespace_b)
    assert after.metadata.generation == before.metadata.generation  # nothing was sent
    assert after.metadata.annotations[REVISION] == "2"
    assert model_version(k8s_cluster_b, k8s_namespace_b) == "2"
    for who in (viewer, fleet):
        assert not [e for e in who("audit", "-o", "json").json() if e["action"] == "rollback"]
