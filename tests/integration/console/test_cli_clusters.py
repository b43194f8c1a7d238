"""A profile naming two real clusters (the test cluster ``a`` and cluster ``b``): without
``--cluster`` the CLI reads and acts on both as one fleet (a CLUSTER column, deployments named
CLUSTER/NAMESPACE/NAME, a short name where it is unambiguous, each cluster's own rules and
audit lines); ``--cluster`` chooses one."""

from __future__ import annotations

import json
import signal
from functools import partial
from pathlib import Path

import pytest
from kubernetes import client

from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import Fleetdeck
from tests.support.clusters import (
    REFUSED,
    InProfile,
    clusters_fleetdeck,
    contexts_fleetdeck,
    kubeconfig_moved,
    merged_kubeconfig,
)
from tests.support.k8s_objects import VERSION, apps, batch, core, deployment, job, predictor


def a_and_b(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    store: str,
    tmp_path: Path,
    *,
    b_read_only: bool,
) -> Fleetdeck:
    return fleet_of(
        tmp_path,
        store,
        [
            ("a", k8s_cluster.kubeconfig, k8s_namespace, False),
            ("b", k8s_cluster_b.kubeconfig, k8s_namespace_b, b_read_only),
        ],
    )


@pytest.fixture
def two_clusters(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    hdfs_root: str,
    tmp_path: Path,
) -> Fleetdeck:
    """The two clusters, b read-only."""
    return a_and_b(
        k8s_cluster, k8s_namespace, k8s_cluster_b, k8s_namespace_b, hdfs_root, tmp_path,
        b_read_only=True,
    )  # fmt: skip


@pytest.fixture
def both_writable(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    hdfs_root: str,
    tmp_path: Path,
) -> Fleetdeck:
    """The two clusters, neither read-only."""
    return a_and_b(
        k8s_cluster, k8s_namespace, k8s_cluster_b, k8s_namespace_b, hdfs_root, tmp_path,
        b_read_only=False,
    )  # fmt: skip


def fleet_of(tmp_path: Path, store: str, clusters: list[tuple[str, Path, str, bool]]) -> Fleetdeck:
    """The CLI on a profile ``fleet`` naming ``clusters`` (name, kubeconfig, its one namespace,
    read-only)."""
    return clusters_fleetdeck(tmp_path, [InProfile(*c) for c in clusters], store=store)


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


def create(cluster: K8sCluster, namespace: str, *names: str, replicas: int = 0) -> None:
    apps = client.AppsV1Api(cluster.api_client())
    for name in names:
        apps.create_namespaced_deployment(namespace, deployment(name, replicas=replicas))  # type: ignore[arg-type]


def replicas_of(cluster: K8sCluster, namespace: str, name: str) -> int:
    apps = client.AppsV1Api(cluster.api_client())
    replicas = apps.read_namespaced_deployment(name, namespace).spec.replicas
    assert replicas is not None
    return replicas


def test_ls_lists_both_clusters_deployments_with_a_cluster_column_and_whole_names(
    two_clusters: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    create(k8s_cluster, k8s_namespace, "digits", "only-in-a")
    create(k8s_cluster_b, k8s_namespace_b, "digits", "only-in-b")
    expected = sorted(
        [
            f"deployment/a/{k8s_namespace}/digits",
            f"deployment/a/{k8s_namespace}/only-in-a",
            f"deployment/b/{k8s_namespace_b}/digits",
            f"deployment/b/{k8s_namespace_b}/only-in-b",
        ]
    )

    def names() -> list[str]:
        result = two_clusters("ls", "-o", "name")
        assert result.code == 0, result.err
        return sorted(result.out.split())

    poll_until("both clusters' rows", lambda: names() == expected)
    table = two_clusters("ls")
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:3] == ["CLUSTER", "NAMESPACE", "NAME"]
    assert sorted(tuple(r.split()[:3]) for r in rows) == sorted(
        [
            ("a", k8s_namespace, "digits"),
            ("a", k8s_namespace, "only-in-a"),
            ("b", k8s_namespace_b, "digits"),
            ("b", k8s_namespace_b, "only-in-b"),
        ]
    )
    as_json = json.loads(two_clusters("ls", "-o", "json").out)
    assert sorted((d["cluster"], d["name"]) for d in as_json) == [
        ("a", "digits"),
        ("a", "only-in-a"),
        ("b", "digits"),
        ("b", "only-in-b"),
    ]
    jobs = two_clusters("jobs")
    assert jobs.code == 0, jobs.err


def test_a_short_name_is_found_in_its_cluster_and_an_ambiguous_one_is_refused_naming_both(
    two_clusters: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    create(k8s_cluster, k8s_namespace, "digits", "only-in-a")
    create(k8s_cluster_b, k8s_namespace_b, "digits")
    poll_until(
        "both clusters' rows", lambda: len(two_clusters("ls", "-o", "name").out.split()) == 3
    )

    found = two_clusters("history", "only-in-a")
    assert found.code == 0, found.err
    ambiguous = two_clusters("status", "digits")
    assert ambiguous.code == 2  # bad usage: say which
    assert (
        f"deployment 'digits' is in 2 places (a/{k8s_namespace}/digits, "
        f"b/{k8s_namespace_b}/digits): name one as CLUSTER/NAMESPACE/NAME"
    ) in ambiguous.err
    whole = two_clusters("status", f"b/{k8s_namespace_b}/digits")
    assert whole.code == 0, whole.err
    assert whole.out.startswith(f"b/{k8s_namespace_b}/digits: ")
    by_kind = two_clusters("describe", f"deployment/a/{k8s_namespace}/digits", "-o", "name")
    assert by_kind.out.split() == [f"deployment/a/{k8s_namespace}/digits"]
    nowhere = two_clusters("scale", "nowhere", "--replicas", "1")
    assert nowhere.code == 1
    assert "deployment 'nowhere' not found in any cluster" in nowhere.err
    bad = two_clusters("status", "a/b/c/d")
    assert bad.code == 2
    assert "give NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME" in bad.err
    unknown = two_clusters("status", f"c/{k8s_namespace}/digits")
    assert unknown.code == 2
    assert "has no cluster 'c' (a, b)" in unknown.err


def test_one_command_acts_in_both_clusters_each_by_its_own_rules_and_audits_its_cluster(
    two_clusters: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    tmp_path: Path,
) -> None:
    create(k8s_cluster, k8s_namespace, "digits")
    create(k8s_cluster_b, k8s_namespace_b, "digits")
    poll_until(
        "both clusters' rows", lambda: len(two_clusters("ls", "-o", "name").out.split()) == 2
    )

    # b is read-only in the profile: its target is refused, a's is scaled, in one command.
    both = two_clusters(
        "scale", f"a/{k8s_namespace}/digits", f"b/{k8s_namespace_b}/digits",
        "--replicas", "2", "--yes",
    )  # fmt: skip
    assert both.code == 1
    assert f"a/{k8s_namespace}/digits: ok" in both.out
    assert f"b/{k8s_namespace_b}/digits: FAILED" in both.out
    assert "read-only" in both.out
    assert replicas_of(k8s_cluster, k8s_namespace, "digits") == 2
    assert replicas_of(k8s_cluster_b, k8s_namespace_b, "digits") == 0  # untouched
    # The audit line names the cluster it acted on.
    audit = two_clusters("audit", "--json")
    entries = [e for e in json.loads(audit.out) if e["action"] == "scale"]
    assert [(e["cluster"], e["targets"]) for e in entries] == [("a", [f"{k8s_namespace}/digits"])]
    # -l spans both clusters too; a dry run shows every target with its cluster.
    dry = two_clusters("restart", "-l", "app.kubernetes.io/name=digits", "--dry-run", "--json")
    assert sorted(r["target"] for r in json.loads(dry.out)) == [
        f"a/{k8s_namespace}/digits",
        f"b/{k8s_namespace_b}/digits",
    ]


def test_a_cluster_that_cannot_be_opened_is_said_beside_what_the_others_answer(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> None:
    gone = kubeconfig_moved(k8s_cluster, tmp_path / "gone.kubeconfig", REFUSED)
    fleet = fleet_of(
        tmp_path,
        hdfs_root,
        [("a", k8s_cluster.kubeconfig, k8s_namespace, False), ("gone", gone, "models", False)],
    )
    create(k8s_cluster, k8s_namespace, "digits")
    poll_until("a's row", lambda: bool(fleet("ls", "-o", "name").out.split()))
    listed = fleet("ls", "-o", "name")
    assert listed.out.split() == [f"deployment/a/{k8s_namespace}/digits"]
    assert listed.code == 1  # a partial answer
    assert "fleetdeck: cluster gone: " in listed.err
    # A short name could be in the cluster that cannot be read: not guessed.
    short = fleet("scale", "digits", "--replicas", "1")
    assert short.code == 1
    assert "cannot tell which cluster while gone" in short.err
    assert replicas_of(k8s_cluster, k8s_namespace, "digits") == 0
    # Named whole, a's deployment is acted on.
    whole = fleet("scale", f"a/{k8s_namespace}/digits", "--replicas", "1")
    assert whole.code == 0, whole.err
    # A command of one cluster says how to choose it.
    one = fleet("deploy", "digits-2", "--model", "digits", "--version", "1")
    assert one.code == 2  # bad usage: say which
    assert "deploy works on one cluster: add --cluster NAME (profile 'fleet' names a, gone)" in (
        one.err
    )


# ----- a rollout cluster after cluster ---------------------------------------------------------
ROLLOUT = ("rollout", "-l", "fleetdeck.io/model=digits", "--version", "2", "--no-verify")


def models_in(cluster: K8sCluster, namespace: str) -> dict[str, str]:
    """Each Deployment's pod-template model version."""
    found = apps(cluster).list_namespaced_deployment(namespace)
    return {d.metadata.name: d.spec.template.metadata.labels[VERSION] for d in found.items}


def no_room_for_new_pods(cluster: K8sCluster, namespace: str, pods: int) -> None:
    """A quota of ``pods`` pods: a rollout's first new pod (maxSurge 1) is never created, so
    the rollout fails at its progress deadline, as one that cannot be scheduled does."""
    quota = {"metadata": {"name": "pods"}, "spec": {"hard": {"pods": str(pods)}}}
    api = core(cluster)
    api.create_namespaced_resource_quota(namespace, quota)

    def counted() -> bool:
        status = api.read_namespaced_resource_quota("pods", namespace).status
        return bool(status and status.hard and status.used is not None)

    poll_until("the quota's first count", counted)


def digits_available_in_both(
    fleet: Fleetdeck, a: tuple[K8sCluster, str], b: tuple[K8sCluster, str]
) -> None:
    """Deployment ``digits`` (an 8 s progress deadline) in cluster a's namespace and b's,
    available in both."""
    for cluster, namespace in (a, b):
        apps(cluster).create_namespaced_deployment(
            namespace, predictor("digits", progress_deadline=8)
        )

    def available(where: str) -> bool:
        return fleet("status", where).code == 0

    for name, (_, namespace) in (("a", a), ("b", b)):
        where = f"{name}/{namespace}/digits"
        poll_until(f"{where} available", partial(available, where))


def test_wave_by_cluster_keeps_the_first_clusters_version_when_the_seconds_fails_and_rolls_back(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    both_writable: Fleetdeck,
) -> None:
    fleet = both_writable
    no_room_for_new_pods(k8s_cluster_b, k8s_namespace_b, pods=1)
    digits_available_in_both(fleet, (k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b))

    done = fleet(
        *ROLLOUT, "--wave-by", "cluster", "--bake", "0", "--on-failure", "rollback-wave",
        "--stuck-seconds", "600", "--yes", timeout=300,
    )  # fmt: skip
    assert done.code == 1, done.err + done.out
    # Both clusters' plans were shown before anything was sent, a's first.
    assert done.err.index("in cluster a") < done.err.index("in cluster b")
    assert "cluster a: batch " in done.err
    assert "cluster b: batch " in done.err
    assert models_in(k8s_cluster, k8s_namespace) == {"digits": "2"}  # a keeps the new version
    assert models_in(k8s_cluster_b, k8s_namespace_b) == {"digits": "1"}  # b's wave rolled back
    assert f"{k8s_namespace_b}/digits: rolled-back: " in done.out
    # The journals name their clusters.
    listed = json.loads(fleet("batch", "list", "-o", "json").out)
    assert sorted((b["plan"]["cluster"], b["state"]) for b in listed)[0] == ("a", "done")
    assert sorted(b["plan"]["cluster"] for b in listed) == ["a", "b"]


def test_wave_by_cluster_checks_every_cluster_before_sending_anything(
    two_clusters: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    for cluster, namespace in ((k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b)):
        apps(cluster).create_namespaced_deployment(namespace, predictor("digits"))
    poll_until("both rows", lambda: len(two_clusters("ls", "-o", "name").out.split()) == 2)
    mixed = two_clusters(*ROLLOUT, "--waves", "100%", "--yes")
    assert mixed.code == 2
    assert "add --wave-by cluster" in mixed.err
    refused = two_clusters(*ROLLOUT, "--wave-by", "cluster", "--yes")
    assert refused.code == 1
    assert "read-only" in refused.err  # b is read-only in the profile
    assert models_in(k8s_cluster, k8s_namespace) == {"digits": "1"}  # nothing sent to a either
    dry = two_clusters(*ROLLOUT, "--wave-by", "cluster", "--dry-run", "--cluster", "a")
    assert dry.code == 0, dry.err
    assert f"cluster a wave 1: {k8s_namespace}/digits" in dry.out


def test_a_cluster_sequence_killed_in_its_first_cluster_is_finished_by_resume_in_both(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    both_writable: Fleetdeck,
    tmp_path: Path,
) -> None:
    fleet = both_writable
    batches = tmp_path / "state" / "fleetdeck" / "batches"
    # Five replicas roll one pod at a time: each rollout takes seconds, room to kill mid-way.
    for name in ("digits-1", "digits-2", "digits-3"):
        apps(k8s_cluster).create_namespaced_deployment(k8s_namespace, predictor(name, replicas=5))
    apps(k8s_cluster_b).create_namespaced_deployment(k8s_namespace_b, predictor("digits"))
    poll_until("four rows", lambda: len(fleet("ls", "-o", "name").out.split()) == 4)
    process = fleet.start(
        *ROLLOUT, "--wave-by", "cluster", "--waves", "1,100%", "--bake", "0", "--yes"
    )

    def first_result_in_a() -> bool:
        journals = list(batches.glob("*.jsonl")) if batches.is_dir() else []
        return bool(journals) and '"kind":"result"' in journals[0].read_text().replace(" ", "")

    poll_until("a's first target sent", first_result_in_a, timeout=120)
    process.send_signal(signal.SIGKILL)  # only a's journal remains; b was never started
    process.communicate(timeout=30)
    (batch_id,) = [p.stem for p in batches.glob("*.jsonl")]
    assert models_in(k8s_cluster_b, k8s_namespace_b) == {"digits": "1"}

    resumed = fleet("batch", "resume", batch_id, timeout=300)
    assert resumed.code == 0, resumed.err + resumed.out
    assert "cluster b: batch " in resumed.err  # a finished, then b followed
    assert set(models_in(k8s_cluster, k8s_namespace).values()) == {"2"}
    assert models_in(k8s_cluster_b, k8s_namespace_b) == {"digits": "2"}


def test_waves_naming_clusters_go_in_that_order_and_rollback_all_undoes_the_clusters_before(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    both_writable: Fleetdeck,
) -> None:
    fleet = both_writable
    no_room_for_new_pods(k8s_cluster, k8s_namespace, pods=1)  # a's rollout cannot progress
    digits_available_in_both(fleet, (k8s_cluster, k8s_namespace), (k8s_cluster_b, k8s_namespace_b))
    wrong = fleet(*ROLLOUT, "--waves", "b,c,*", "--yes")
    assert wrong.code != 0
    assert "'c', not a cluster of the profile (a, b)" in wrong.err

    done = fleet(
        *ROLLOUT, "--waves", "b,*", "--bake", "0", "--on-failure", "rollback-all",
        "--stuck-seconds", "600", "--yes", timeout=300,
    )  # fmt: skip
    assert done.code == 1, done.err + done.out
    # b first, as the wave list says, then a, whose failure rolls b back too.
    assert done.err.index("cluster b: batch ") < done.err.index("cluster a: batch ")
    assert "rolling back the clusters done before it" in done.err
    assert models_in(k8s_cluster, k8s_namespace) == {"digits": "1"}
    assert models_in(k8s_cluster_b, k8s_namespace_b) == {"digits": "1"}
    listed = json.loads(fleet("batch", "list", "-o", "json").out)
    states = {b["plan"]["cluster"]: b["state"] for b in listed}
    assert states["b"] == "aborted"  # rolled back after it was done, and recorded so


def test_context_a_comma_b_widens_a_one_cluster_profile_to_a_cluster_per_context(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    tmp_path: Path,
) -> None:
    create(k8s_cluster, k8s_namespace, "only-in-a")
    create(k8s_cluster_b, k8s_namespace_b, "only-in-b")
    kubeconfig = merged_kubeconfig(tmp_path / "kubeconfig", {"a": k8s_cluster, "b": k8s_cluster_b})
    fleet = contexts_fleetdeck(tmp_path, kubeconfig, [k8s_namespace, k8s_namespace_b])
    one = fleet("ls", "-o", "name")  # the profile's context alone: cluster a
    assert one.code == 0, one.err
    assert one.out.split() == ["deployment/only-in-a"]
    both = fleet("--context", "a,b", "ls", "-o", "name")
    assert both.code == 0, both.err
    assert both.out.split() == [
        f"deployment/a/{k8s_namespace}/only-in-a",
        f"deployment/b/{k8s_namespace_b}/only-in-b",
    ]
    scaled = fleet("--context", "a,b", "scale", "only-in-b", "--replicas", "1", "--yes")
    assert scaled.code == 0, scaled.err
    assert replicas_of(k8s_cluster_b, k8s_namespace_b, "only-in-b") == 1
    bad = fleet("--context", "a,no_such", "ls")
    assert bad.code != 0
    assert "context 'no_such' cannot name a cluster" in bad.err


def test_a_job_is_cancelled_in_whichever_cluster_it_is_and_an_ambiguous_one_is_refused(
    both_writable: Fleetdeck,
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
) -> None:
    fleet = both_writable
    batch(k8s_cluster).create_namespaced_job(k8s_namespace, job("train"))
    batch(k8s_cluster_b).create_namespaced_job(k8s_namespace_b, job("train"))
    batch(k8s_cluster_b).create_namespaced_job(k8s_namespace_b, job("train-b"))
    poll_until("three jobs", lambda: len(fleet("jobs", "-o", "name").out.split()) == 3)

    ambiguous = fleet("cancel", "train", "--yes")
    assert ambiguous.code != 0
    assert "is in 2 places" in ambiguous.err
    done = fleet("cancel", "train-b", f"a/{k8s_namespace}/train", "--yes")
    assert done.code == 0, done.err + done.out

    def jobs_in(cluster: K8sCluster, namespace: str) -> set[str]:
        listed = batch(cluster).list_namespaced_job(namespace).items
        return {j.metadata.name for j in listed if not j.metadata.deletion_timestamp}

    poll_until("a's train gone", lambda: jobs_in(k8s_cluster, k8s_namespace) == set())
    poll_until("b's train-b gone", lambda: jobs_in(k8s_cluster_b, k8s_namespace_b) == {"train"})
