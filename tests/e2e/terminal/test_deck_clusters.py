"""The deck over two real clusters in a real terminal (tmux): one Fleet table with a CLUSTER
column and ``cluster=`` in the filter, each cluster's connection in the header, actions offered
by the rules of the cluster a row is in (a viewer in cluster a, on call in cluster b), screens
opened on the row's cluster, every cluster's jobs and GPUs on the Training screen, and a cluster
that stops answering marks only its own rows stale while the other's changes keep arriving."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from tests.e2e.terminal.tmux_terminal import TmuxTerminal
from tests.infra.k8s_fixtures import K8sCluster
from tests.support.clusters import InProfile, clusters_fleetdeck
from tests.support.k8s_objects import batch, job, predictor


def create(cluster: K8sCluster, namespace: str, *names: str) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    for name in names:
        apps.create_namespaced_deployment(namespace, predictor(name))  # type: ignore[arg-type]
    batch(cluster).create_namespaced_job(namespace, job(f"train-{names[-1]}"))


def rows_of(name: str, screen: str) -> dict[str, list[str]]:
    """The Fleet rows of deployment ``name`` by the cluster named in the next cell (a stale
    cluster's cell reads ``b (stale)``): {cluster: the row's cells}."""
    found: dict[str, list[str]] = {}
    for line in screen.splitlines():
        cells = line.split()
        if name in cells[:2]:  # a marked row has a mark before its name
            after = cells[cells.index(name) + 1 :]
            if after:
                found[after[0]] = after
    return found


def shows(cluster: str, state: str, screen: str) -> bool:
    return f"{cluster}: {state}" in screen


def both_live(screen: str) -> bool:
    return shows("a", "● live", screen) and shows("b", "● live", screen)


def test_one_fleet_over_two_clusters_each_with_its_own_rules_state_and_screens(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    tmp_path: Path,
    terminal_120x40: TmuxTerminal,
) -> None:
    create(k8s_cluster, k8s_namespace, "digits")
    create(k8s_cluster_b, k8s_namespace_b, "digits", "only-b")
    fleetdeck = clusters_fleetdeck(
        tmp_path,
        [
            InProfile("a", k8s_cluster.kubeconfig, k8s_namespace, context="kwok-viewer"),
            InProfile("b", k8s_cluster_b.kubeconfig, k8s_namespace_b, context="kwok-oncall"),
        ],
    )
    term = terminal_120x40
    term.start(fleetdeck.command(), {**fleetdeck.env, "TERM": "xterm-256color", "LANG": "C.UTF-8"})

    # One table: the same name in both clusters is two rows, told apart by CLUSTER.
    fleet = term.wait_for(
        "both clusters' rows, both live",
        lambda s: both_live(s) and set(rows_of("digits", s)) == {"a", "b"} and "only-b" in s,
        120,
    )
    assert "CLUSTER" in fleet
    # Each cluster says what its RBAC takes away: the viewer everything, on call only delete.
    term.wait_for(
        "each cluster's RBAC answers",
        lambda s: "a: RBAC: no rollout" in s and "b: RBAC: no delete " in s,
    )

    # The filter knows the cluster.
    term.press("/")
    term.wait_for("the filter box", lambda s: "filter: text" in s, 30)
    term.type("cluster=b")
    term.press("Enter")
    term.wait_for(
        "only cluster b's rows",
        lambda s: set(rows_of("digits", s)) == {"b"} and "only-b" in s and "/cluster=b" in s,
    )
    term.press("Escape")  # clears the filter: every row again
    term.wait_for("both again", lambda s: set(rows_of("digits", s)) == {"a", "b"})

    # Actions by the rules of the row's cluster: a's digits first (the viewer's cluster).
    term.press("g")  # the cursor stayed on b's digits through the filter: to the first row
    term.press("s")
    refused = term.wait_for("scale refused in a, saying why", lambda s: "scale: cluster a" in s)
    assert "Scale: 1 deployment" not in refused  # no dialog opened
    term.press("j")  # b's digits: on call may scale there
    term.press("s")
    term.wait_for("the scale dialog on b's row", lambda s: "Scale: 1 deployment" in s, 30)
    term.press("Escape")
    term.wait_for("the dialog closed", lambda s: "Scale: 1 deployment" not in s, 30)

    # A screen opened from a row works on that row's cluster and says which.
    term.press("Enter")
    detail = term.wait_for("b's digits in detail", lambda s: "fleet/b@kwok-oncall" in s, 30)
    assert k8s_namespace_b in detail
    term.press("Escape")
    term.wait_for("the fleet again", lambda s: "CLUSTER" in s, 30)

    # Training lists every cluster's jobs, each with its cluster, under both clusters' names.
    term.command("jobs")
    jobs = term.wait_for(
        "both clusters' jobs and GPUs",
        lambda s: "Training · 2 jobs" in s and "a: 1, b: 1" in s and s.count("GPU nodes") == 2,
        60,
    )
    assert "a: 0/" in jobs  # each cluster's GPU capacity: its nodes', none held by these jobs
    assert "b: 0/" in jobs
    assert set(rows_of("train-digits", jobs)) == {"a"}
    assert set(rows_of("train-only-b", jobs)) == {"b"}
    assert "a@kwok-viewer" in jobs
    assert "b@kwok-oncall" in jobs
    term.press("Escape")
    term.wait_for("the fleet again", lambda s: "CLUSTER" in s, 30)

    # Cluster b stops answering: its rows go stale, and a's changes still arrive.
    apps_a = client.AppsV1Api(k8s_cluster.api_client())
    with k8s_cluster_b.frozen_apiserver():
        stale = term.wait_for(
            "b reconnecting, its rows stale",
            lambda s: shows("b", "reconnecting since", s) and "b (stale)" in s,
            60,
        )
        assert shows("a", "● live", stale)
        apps_a.patch_namespaced_deployment_scale("digits", k8s_namespace, {"spec": {"replicas": 3}})
        term.wait_for(
            "a's scale-up shown while b is away",
            lambda s: any(cell.endswith("/3") for cell in rows_of("digits", s).get("a", [])),
            60,
        )
    term.wait_for("b live again, its rows fresh", lambda s: both_live(s) and "(stale)" not in s, 90)
    assert term.exit_code() is None
