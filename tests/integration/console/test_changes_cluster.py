"""``fleetdeck changes`` and ``fleetdeck undo`` against the real control plane (kube-apiserver,
kube-controller-manager, KWOK): a change made with kubectl shows as nobody's edit beside
fleetdeck's own, undo rolls a rollout back through the usual path with its audit line naming
the change, an undo that would throw away a later change is refused, and a dry run sends
nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.console.test_cli_kubectl_habits import apps, deploy
from tests.support.changes import listed_changes as changes
from tests.support.changes import of_deployments, the
from tests.support.cli import Fleetdeck, fleetdeck_with_digits

REVISION = "deployment.kubernetes.io/revision"
MODEL_VERSION = "fleetdeck.io/model-version"


@pytest.fixture
def fleetdeck(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> Fleetdeck:
    return fleetdeck_with_digits(
        tmp_path, kubeconfig=k8s_cluster.kubeconfig, namespace=k8s_namespace, store=hdfs_root
    )


def deployment(k8s_cluster: K8sCluster, namespace: str, name: str = "digits") -> Any:
    return apps(k8s_cluster).read_namespaced_deployment(name, namespace)


def at_revision(k8s_cluster: K8sCluster, namespace: str, revision: int) -> bool:
    """The deployment controller has made ``revision`` and the Deployment says so."""
    api = deployment(k8s_cluster, namespace)
    annotations = api.metadata.annotations or {}
    return (
        annotations.get(REVISION) == str(revision)
        and (api.status.observed_generation or 0) >= api.metadata.generation
    )


def a_second_after(when: datetime) -> None:
    """Wait until the clock is in a later whole second than ``when``: Kubernetes dates a
    ReplicaSet (what dates a change made outside fleetdeck) to the second, fleetdeck's own
    changes to the millisecond, so two changes in one second may list in either order."""
    later = when.replace(microsecond=0) + timedelta(seconds=1)
    poll_until(f"the clock to pass {later}", lambda: datetime.now(UTC) >= later)


def test_a_change_made_with_kubectl_shows_as_an_edit_not_via_fleetdeck(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    a_second_after(datetime.now(UTC))  # its audit line was written before deploy returned
    poll_until("revision 1", lambda: at_revision(k8s_cluster, k8s_namespace, 1))
    # The real kubectl, as an operator types it: a strategic-merge patch of the pod template
    # that copies the Deployment's annotations (fleetdeck's stamp of revision 1 among them)
    # to the new ReplicaSet, and writes no change-cause of its own.
    k8s_cluster.kubectl("set", "env", "deployment/digits", "FOO=bar", "-n", k8s_namespace)
    poll_until("revision 2", lambda: at_revision(k8s_cluster, k8s_namespace, 2))

    listed = of_deployments(changes(fleetdeck))
    assert [c["kind"] for c in listed] == ["edit", "deploy"], listed  # newest first
    edit, deployed = listed
    assert (edit["via_fleetdeck"], edit["who"]) == (False, "")
    assert edit["deployments"] == [
        {
            "deployment": f"{k8s_namespace}/digits",
            "from": "digits v1 (rev 1)",
            "to": "digits v1 (rev 2)",
        }
    ]
    assert edit["undo"] == "possible"
    assert (deployed["via_fleetdeck"], deployed["who"]) == (True, "admin")
    assert deployed["deployments"] == [
        {"deployment": f"{k8s_namespace}/digits", "from": "(none)", "to": "digits v1 (rev 1)"}
    ]

    table = fleetdeck("changes", "--since", "1h")
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split()[:5] == ["ID", "TIME", "KIND", "WHO", "DEPLOYMENTS"]
    (edit_line,) = [line for line in lines if line.startswith(edit["id"])]
    assert "(not via fleetdeck)" in edit_line
    (deploy_line,) = [line for line in lines if line.startswith(deployed["id"])]
    assert "admin" in deploy_line
    assert "(not via fleetdeck)" not in deploy_line


def test_undo_rolls_a_rollout_back_naming_the_change_and_refuses_to_undo_it_twice(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    poll_until("revision 1", lambda: at_revision(k8s_cluster, k8s_namespace, 1))
    rolled = fleetdeck("rollout", "digits", "--version", "2")
    assert rolled.code == 0, rolled.err
    poll_until("revision 2", lambda: at_revision(k8s_cluster, k8s_namespace, 2))

    listed = of_deployments(changes(fleetdeck))
    assert [c["kind"] for c in listed] == ["rollout", "deploy"], listed
    rollout = the("rollout", listed)
    assert (rollout["via_fleetdeck"], rollout["who"]) == (True, "admin")
    assert rollout["deployments"] == [
        {
            "deployment": f"{k8s_namespace}/digits",
            "from": "digits v1 (rev 1)",
            "to": "digits v2 (rev 2)",
        }
    ]

    asked = fleetdeck("undo", rollout["id"])
    assert asked.code == 2
    assert "needs confirmation: add --yes" in asked.err
    undone = fleetdeck("undo", rollout["id"], "--yes")
    assert undone.code == 0, undone.out + undone.err
    assert f"{k8s_namespace}/digits: roll back to revision 1 (digits v1 (rev 1))" in undone.err
    assert undone.out == f"{k8s_namespace}/digits: ok: rolled digits back to revision 1\n"
    poll_until(
        "version 1 in the template again",
        lambda: (
            deployment(k8s_cluster, k8s_namespace).spec.template.metadata.labels[MODEL_VERSION]
            == "1"
        ),
    )
    poll_until("revision 3", lambda: at_revision(k8s_cluster, k8s_namespace, 3))
    audited = [e for e in fleetdeck("audit", "-o", "json").json() if e["action"] == "rollback"]
    assert [
        (e["parameters"].get("undoes"), e["parameters"].get("to_revision"), e["dry_run"])
        for e in audited
    ] == [(rollout["id"], 1, False)]
    undo = the("undo", changes(fleetdeck))
    assert undo["undoes"] == rollout["id"]
    assert undo["deployments"][0]["to"] == "digits v1 (rev 3)"

    # The rollout again: it was undone since, and an undo never throws away a later change.
    before = deployment(k8s_cluster, k8s_namespace)
    again = fleetdeck("undo", rollout["id"], "--yes")
    assert again.code == 1, again.out + again.err
    assert "changed since: it is at revision 3, this change left revision 2" in again.err
    assert "undo the newer change first" in again.err
    after = deployment(k8s_cluster, k8s_namespace)
    assert after.metadata.generation == before.metadata.generation  # nothing was sent
    assert after.metadata.annotations[REVISION] == "3"
    assert after.spec.template.metadata.labels[MODEL_VERSION] == "1"
    rollbacks = [e for e in fleetdeck("audit", "-o", "json").json() if e["action"] == "rollback"]
    assert len(rollbacks) == 1


def test_undo_dry_run_of_a_scale_previews_it_and_sends_nothing(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    poll_until("revision 1", lambda: at_revision(k8s_cluster, k8s_namespace, 1))
    scaled = fleetdeck("scale", "digits", "--replicas", "3")
    assert scaled.code == 0, scaled.err
    scale = the("scale", changes(fleetdeck))
    assert scale["deployments"] == [
        {"deployment": f"{k8s_namespace}/digits", "from": "1 replicas", "to": "3 replicas"}
    ]
    before = deployment(k8s_cluster, k8s_namespace)
    assert before.spec.replicas == 3

    preview = fleetdeck("undo", scale["id"], "--dry-run")
    assert preview.code == 0, preview.out + preview.err
    assert f"undo {scale['id']}: scale to 3" in preview.err
    assert (
        f"{k8s_namespace}/digits: scale back to 1 replicas; now digits v1 (rev 1), 3 replicas"
        in preview.err
    )
    assert preview.out == f"{k8s_namespace}/digits: ok: would scale digits to 1\n"
    after = deployment(k8s_cluster, k8s_namespace)
    assert after.spec.replicas == 3
    assert after.metadata.generation == before.metadata.generation
    assert not [
        e
        for e in fleetdeck("audit", "-o", "json").json()
        if e["parameters"].get("undoes") and not e["dry_run"]
    ]
    assert [c["kind"] for c in of_deployments(changes(fleetdeck))] == ["scale", "deploy"]
