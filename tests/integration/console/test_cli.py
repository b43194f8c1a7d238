"""``fleetdeck`` against the real control plane: what an operator types and what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import Fleetdeck, fleetdeck_with_digits


@pytest.fixture
def fleetdeck(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> Fleetdeck:
    return fleetdeck_with_digits(
        tmp_path, kubeconfig=k8s_cluster.kubeconfig, namespace=k8s_namespace, store=hdfs_root
    )


def test_deploy_wait_ls_rollout_history_rollback_delete(fleetdeck: Fleetdeck) -> None:
    assert fleetdeck("ls", "--json").json() == []
    deployed = fleetdeck("deploy", "digits", "--model", "digits", "--version", "1", "--wait")
    assert deployed.code == 0, deployed.err
    assert "digits: Available 1/1 ready" in deployed.out
    (row,) = fleetdeck("ls", "--json").json()
    assert (row["name"], row["model"], row["version"], row["state"]) == (
        "digits",
        "digits",
        "1",
        "Available",
    )

    assert fleetdeck("rollout", "digits", "--version", "2").code == 0
    assert fleetdeck("status", "digits", "--watch").code == 0
    history = fleetdeck("history", "digits", "--json").json()
    assert [h["model_version"] for h in history] == ["1", "2"]
    # "admin": the API server's name for kwok-admin's credentials
    assert "rollout digits v2 by admin via fleetdeck" in history[1]["change_cause"]

    back = fleetdeck("rollback", "digits")
    assert back.code == 0
    assert "rolled digits back to revision 1" in back.out
    assert fleetdeck("delete", "digits").code == 0
    assert fleetdeck("ls", "--json").json() == []


def test_refusals_exit_1_with_the_reason_and_bad_usage_exits_2(fleetdeck: Fleetdeck) -> None:
    missing = fleetdeck("deploy", "digits", "--model", "digits", "--version", "9")
    assert missing.code == 1
    assert "version 9 of model 'digits' not found" in missing.out
    readonly = fleetdeck("--readonly", "deploy", "digits", "--model", "digits", "--version", "1")
    assert readonly.code == 1
    assert "read-only" in readonly.err
    assert fleetdeck("ls", "--json").json() == []
    assert fleetdeck("deploy", "digits", "--model", "digits").code == 2  # no --version
    assert fleetdeck("rollout", "--version", "2").code == 2  # no targets
    assert fleetdeck("ls", "-l", "app in (a,b)").code == 0  # set-based, as kubectl takes it
    malformed = fleetdeck("ls", "-l", "app in (a,b")
    assert malformed.code == 2
    assert "unclosed '('" in malformed.err


def test_a_multi_target_change_needs_confirmation_and_dry_runs_change_nothing(
    fleetdeck: Fleetdeck,
) -> None:
    for name in ("digits-a", "digits-b"):
        assert fleetdeck("deploy", name, "--model", "digits", "--version", "1").code == 0
    selector = ("-l", "fleetdeck.io/model=digits")
    unconfirmed = fleetdeck("rollout", *selector, "--version", "2")
    assert unconfirmed.code == 2
    assert "needs confirmation: add --yes" in unconfirmed.err
    assert "rollout 2 deployments" in unconfirmed.err
    dry = fleetdeck("rollout", *selector, "--version", "2", "--dry-run", "--json").json()
    assert [r["dry_run"] for r in dry] == [True, True]
    assert {row["version"] for row in fleetdeck("ls", "--json").json()} == {"1"}
    done = fleetdeck("rollout", *selector, "--version", "2", "--yes")
    assert done.code == 0
    poll_until(
        "both rolled out", lambda: {r["version"] for r in fleetdeck("ls", "--json").json()} == {"2"}
    )


def test_every_mutation_is_in_the_audit_log(fleetdeck: Fleetdeck) -> None:
    fleetdeck("deploy", "digits", "--model", "digits", "--version", "1", "--dry-run")
    fleetdeck("deploy", "digits", "--model", "digits", "--version", "9")
    entries = fleetdeck("audit", "--json").json()
    assert [(e["action"], e["dry_run"]) for e in entries] == [("deploy", True), ("deploy", False)]
    assert entries[1]["results"][0]["ok"] is False
    assert entries[0]["user"] == "admin"  # as the API server names kwok-admin's credentials
    assert entries[0]["profile"] == "test"
    assert "deploy" in fleetdeck("audit", "--since", "1h").out


def test_training_jobs_land_on_gpu_nodes_or_say_why_they_wait(fleetdeck: Fleetdeck) -> None:
    launched = fleetdeck(
        "train",
        "--model",
        "digits",
        "--data",
        "hdfs://nn:9870/digits",
        "--gpus",
        "2",
        "--param",
        "width=32",
        "--json",
    )
    assert launched.code == 0, launched.err
    too_big = fleetdeck(
        "train", "--model", "digits", "--data", "hdfs://nn:9870/digits", "--gpus", "64"
    )
    assert too_big.code == 0

    def listed() -> Any:
        jobs = fleetdeck("jobs", "--json").json()
        placed = [j for j in jobs if j["gpus"] == 2 and j["node"]]
        waiting = [
            j
            for j in jobs
            if j["gpus"] == 64 and "Insufficient nvidia.com/gpu" in j["pending_reason"]
        ]
        return (placed[0], waiting[0]) if placed and waiting else None

    placed, waiting = poll_until("a placed job and a waiting one", listed)
    assert placed["node"].startswith("kwok-gpu-")
    assert waiting["phase"] == "Pending"
    sweep = fleetdeck(
        "train",
        "--model",
        "digits",
        "--data",
        "hdfs://nn:9870/digits",
        "--grid",
        "learning_rate=0.001,0.01",
        "--grid",
        "width=16,32",
        "--json",
    )
    assert len(sweep.json()) == 4


def test_a_user_the_cluster_would_refuse_is_refused_before_anything_is_sent(
    fleetdeck: Fleetdeck,
) -> None:
    viewer = fleetdeck(
        "--context", "kwok-viewer", "deploy", "digits", "--model", "digits", "--version", "1"
    )
    assert viewer.code == 1
    assert "forbidden: user 'viewer' may not create deployments" in viewer.err
    assert "nothing was sent" in viewer.err
    assert fleetdeck("--context", "kwok-viewer", "ls", "--json").json() == []
    entries = fleetdeck("audit", "--json").json()
    assert entries == []  # refused before anything was sent: nothing to audit


def test_a_training_job_can_be_cancelled(fleetdeck: Fleetdeck) -> None:
    (launched,) = fleetdeck(
        "train", "--model", "digits", "--data", "hdfs://nn:9870/digits", "--gpus", "1", "--json"
    ).json()
    name = launched["target"].split("/", 1)[1]
    dry = fleetdeck("cancel", name, "--dry-run")
    assert dry.code == 0
    assert "would cancel" in dry.out
    assert [j["name"] for j in fleetdeck("jobs", "--json").json()] == [name]
    assert fleetdeck("cancel", f"job/{name}").code == 0
    poll_until("the job gone", lambda: fleetdeck("jobs", "--json").json() == [], timeout=120)
    assert fleetdeck("cancel", name).code == 1  # already gone: 404, said plainly


def test_what_fleetdeck_creates_and_changes_is_managed_by_fleetdeck(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    """As `kubectl get deployment digits -o yaml --show-managed-fields` shows it: our creates
    and patches are ours, not the client library's ("OpenAPI-Generator")."""
    from kubernetes import client

    assert fleetdeck("deploy", "digits", "--model", "digits", "--version", "1").code == 0
    assert fleetdeck("scale", "digits", "--replicas", "3").code == 0
    assert fleetdeck("restart", "digits").code == 0
    apps = client.AppsV1Api(k8s_cluster.api_client("admin"))
    deployment: Any = apps.read_namespaced_deployment("digits", k8s_namespace)
    managers = {
        (entry.manager, entry.operation, entry.subresource or "")
        for entry in deployment.metadata.managed_fields
    }
    # The spec is ours (created, then patched); the status is the controller's.
    assert {m for m in managers if m[2] == ""} == {("fleetdeck", "Update", "")}
    assert not any("OpenAPI-Generator" in manager for manager, _, _ in managers)
    service: Any = client.CoreV1Api(k8s_cluster.api_client("admin")).read_namespaced_service(
        "digits", k8s_namespace
    )
    assert [entry.manager for entry in service.metadata.managed_fields] == ["fleetdeck"]


def test_a_cluster_that_accepts_connections_but_never_answers_is_named_not_waited_out(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster
) -> None:
    with k8s_cluster.frozen_apiserver():
        listed = fleetdeck("ls")
    assert listed.code == 1
    assert "the cluster did not answer (the API server does not answer)" in listed.err
    assert listed.out == ""
