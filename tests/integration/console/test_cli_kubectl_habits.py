"""``fleetdeck`` as kubectl fingers type it (issue 17), against the real control plane: global
options after the command, ``-o yaml|name|wide``, ``ls -w``, describe and events, ``logs -l``,
``scale`` on several, ``status --timeout``, ``--request-timeout``, the audit's "who", coloured
logs and shell completion."""

from __future__ import annotations

import dataclasses
import json
import os
import pty
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from serving.manifest import FileEntry, Manifest
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import Fleetdeck, OutputLines, bash_completions, fleetdeck_with_digits
from tests.support.versions import describe

METRICS = {"accuracy": 0.9731, "int8_accuracy": 0.9702}


def with_metrics(version: int, files: Mapping[str, FileEntry]) -> Manifest:
    return dataclasses.replace(describe(version, files), metrics=METRICS)


@pytest.fixture
def fleetdeck(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> Fleetdeck:
    return fleetdeck_with_digits(
        tmp_path,
        kubeconfig=k8s_cluster.kubeconfig,
        namespace=k8s_namespace,
        store=hdfs_root,
        manifest=with_metrics,
    )


def deploy(fleetdeck: Fleetdeck, *names: str, gpus: int = 0) -> None:
    for name in names:
        done = fleetdeck("deploy", name, "--model", "digits", "--version", "1", "--gpus", str(gpus))
        assert done.code == 0, done.err


def apps(k8s_cluster: K8sCluster) -> Any:
    from kubernetes import client

    return client.AppsV1Api(k8s_cluster.api_client("admin"))


def test_global_options_are_taken_after_the_command(
    fleetdeck: Fleetdeck, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    assert fleetdeck("status", "digits", "-w", "-n", k8s_namespace).code == 0
    listed = fleetdeck("ls", "-n", k8s_namespace, "-o", "json").json()
    assert [d["name"] for d in listed] == ["digits"]
    everywhere = fleetdeck("ls", "-A", "--no-headers")
    assert everywhere.code == 0
    assert any(
        line.split()[:2] == [k8s_namespace, "digits"] for line in everywhere.out.splitlines()
    )
    assert fleetdeck("history", "digits", "--readonly", "--request-timeout", "10s").code == 0
    assert fleetdeck("ls", "--profile", "test", "--context", "kwok-admin", "--json").json()
    # The same option on both sides of the command: the one after wins, as kubectl's.
    assert fleetdeck("-n", "nowhere", "ls", "-n", k8s_namespace, "-o", "name").out == (
        "deployment/digits\n"
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["-n", "models", "ls", "-A"], "-n/--namespace and -A/--all-namespaces: give one of them"),
        (["ls", "-o", "xml"], "argument -o/--output: invalid choice: 'xml'"),
        (["events", "-o", "name"], "invalid choice: 'name'"),
        (["ls", "--request-timeout", "soon"], "--request-timeout 'soon': expected 0 (no limit)"),
        (["status", "digits", "--timeout", "1m"], "--timeout goes with --watch (-w)"),
        (["logs"], "logs: give TARGET (POD, job/NAME or deploy/NAME) or -l SELECTOR"),
        (
            ["logs", "deploy/x", "--since", "1m", "--since-time", "2026-01-01T00:00:00Z"],
            "not allowed with argument",
        ),
        (["logs", "deploy/x", "--since-time", "yesterday"], "expected an RFC 3339 time"),
    ],
)
def test_bad_input_is_exit_2_with_what_to_fix(
    fleetdeck: Fleetdeck, args: list[str], says: str
) -> None:
    done = fleetdeck(*args)
    assert done.code == 2, (done.out, done.err)
    assert says in done.err
    assert done.out == ""


def test_yaml_is_the_json_and_matches_the_api_object(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    as_yaml = fleetdeck("ls", "-o", "yaml").yaml()
    assert as_yaml == fleetdeck("ls", "-o", "json").json()
    (row,) = as_yaml
    api: Any = apps(k8s_cluster).read_namespaced_deployment("digits", k8s_namespace)
    assert (row["name"], row["namespace"]) == (api.metadata.name, api.metadata.namespace)
    assert row["desired"] == api.spec.replicas
    assert row["labels"] == api.metadata.labels
    assert row["image"] == api.spec.template.spec.containers[0].image
    assert row["version"] == api.metadata.labels["fleetdeck.io/model-version"]
    assert row["revision"] == int(api.metadata.annotations["deployment.kubernetes.io/revision"])
    history = fleetdeck("history", "digits", "-o", "yaml").yaml()
    assert history == fleetdeck("history", "digits", "--json").json()


def test_o_name_piped_into_scale_scales_every_deployment(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits-a", "digits-b")
    names = fleetdeck("ls", "-o", "name")
    assert names.out.splitlines() == ["deployment/digits-a", "deployment/digits-b"]
    piped = fleetdeck.xargs(["ls", "-o", "name"], ["scale", "--replicas", "2", "--yes"])
    assert piped.code == 0, piped.err
    api = apps(k8s_cluster)
    for name in ("digits-a", "digits-b"):
        assert api.read_namespaced_deployment(name, k8s_namespace).spec.replicas == 2
    # Several names, or a selector, as the other actions take them.
    assert (
        fleetdeck("scale", "digits-a", "deployment/digits-b", "--replicas", "3", "--yes").code == 0
    )
    assert (
        fleetdeck("scale", "-l", "fleetdeck.io/model=digits", "--replicas", "1", "--yes").code == 0
    )
    for name in ("digits-a", "digits-b"):
        assert api.read_namespaced_deployment(name, k8s_namespace).spec.replicas == 1
    scaled = [
        e["targets"] for e in fleetdeck("audit", "-o", "json").json() if e["action"] == "scale"
    ]
    assert len(scaled) == 6  # one audit line per target: 2 piped, 2 named, 2 selected


def test_ls_watch_prints_a_line_when_a_deployment_changes(fleetdeck: Fleetdeck) -> None:
    deploy(fleetdeck, "digits")
    poll_until("digits ready", lambda: fleetdeck("ls", "--json").json()[0]["ready"] == 1)
    watching = fleetdeck.start("ls", "-w")
    lines = OutputLines(watching)
    try:
        first = lines.until(lambda line: line.split()[1:2] == ["digits"])
        assert first[0].split()[:2] == ["NAMESPACE", "NAME"]
        assert fleetdeck("scale", "digits", "--replicas", "3").code == 0
        changed = lines.until(lambda line: "/3" in line.split()[4])
        assert changed[-1].split()[1] == "digits"
        assert "NAMESPACE" not in "\n".join(changed)  # changes are rows, not new tables
    finally:
        watching.terminate()
        watching.wait(timeout=30)


def test_jobs_watch_as_json_prints_one_object_per_change(fleetdeck: Fleetdeck) -> None:
    watching = fleetdeck.start("jobs", "-w", "-o", "json")
    try:
        launched = fleetdeck(
            "train", "--model", "digits", "--data", "hdfs://nn:9870/digits", "--gpus", "1"
        )
        assert launched.code == 0, launched.err
        line = OutputLines(watching).until(lambda text: text.startswith("{"))[-1]
        assert json.loads(line)["model"] == "digits"
    finally:
        watching.terminate()
        watching.wait(timeout=30)


def test_describe_and_events(fleetdeck: Fleetdeck, k8s_namespace: str) -> None:
    deploy(fleetdeck, "digits")
    assert fleetdeck("rollout", "digits", "--version", "2").code == 0
    assert fleetdeck("autoscale", "digits", "--min", "1", "--max", "3", "--cpu", "70").code == 0
    assert fleetdeck("status", "digits", "-w", "--timeout", "2m").code == 0
    text = fleetdeck("describe", "deployment/digits")
    assert text.code == 0, text.err
    fields = dict(
        (line.split(":", 1)[0], line.split(":", 1)[1].strip())
        for line in text.out.splitlines()
        if not line.startswith(" ") and ":" in line
    )
    assert fields["Model"] == "digits v2"
    assert fields["Metrics"] == "accuracy=0.9731, int8_accuracy=0.9702"
    assert fields["Status"] == "Available"
    assert fields["Route"].startswith("Ingress digits: models.test /v1/models/digits")
    assert fields["Autoscaler"].startswith("digits: 1..3 replicas at 70% CPU")
    for section in ("Conditions:", "Revisions:", "Pods:", "Events:"):
        assert section in text.out
    # The HPA controller (every 5 s on the test cluster) fills in the autoscaler's status: the
    # two formats are compared once it has, so both read the same state.
    poll_until(
        "the HPA controller's conditions",
        lambda: fleetdeck("describe", "digits", "-o", "json").json()["autoscaler"]["conditions"],
        timeout=60,
    )
    found = fleetdeck("describe", "digits", "-o", "yaml").yaml()
    assert found == fleetdeck("describe", "digits", "-o", "json").json()
    assert found["model_version"]["metrics"] == METRICS
    assert [r["model_version"] for r in found["revisions"]] == ["1", "2"]
    assert {c["type"] for c in found["conditions"]} >= {"Available", "Progressing"}
    assert found["route"]["kind"] == "Ingress"
    assert found["autoscaler"]["max_replicas"] == 3
    assert all(p["node"].startswith("kwok-") for p in found["pods"])
    assert fleetdeck("describe", "digits", "-o", "name").out == "deployment/digits\n"

    events = fleetdeck("events", "digits", "-o", "json").json()
    assert {"ScalingReplicaSet", "SuccessfulCreate"} <= {e["reason"] for e in events}
    assert fleetdeck("events", "-o", "yaml").yaml() == events  # every deployment: the one here
    table = fleetdeck("events", "digits", "-o", "wide").out.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"]
    missing = fleetdeck("describe", "nothing")
    assert missing.code == 1
    assert f"deployment 'nothing' not found in namespace {k8s_namespace}" in missing.err


def test_logs_of_a_selector_merge_the_pods_with_their_prefix(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits-a", "digits-b")
    pods = poll_until("two running pods", lambda: running_pods(k8s_cluster, k8s_namespace, 2))
    for pod in pods:
        k8s_cluster.append_log(k8s_namespace, pod, [f"{pod} says hello"])
    merged = fleetdeck("logs", "-l", "fleetdeck.io/model=digits")
    assert merged.code == 0, merged.err
    assert sorted(merged.out.splitlines()) == sorted(f"[{p}] {p} says hello" for p in pods)
    every = fleetdeck("logs", "-l", "app.kubernetes.io/name=digits-a", "--all-containers")
    (pod_a,) = [p for p in pods if p.startswith("digits-a-")]
    assert every.out.splitlines() == [f"{pod_a} says hello"]  # one pod, one container
    recent = fleetdeck(
        "logs", "deploy/digits-a", "--since-time", "2000-01-01T00:00:00Z", "-n", k8s_namespace
    )
    assert recent.out.splitlines() == [f"{pod_a} says hello"]
    none = fleetdeck("logs", "-l", "fleetdeck.io/model=nothing")
    assert none.code == 1
    assert "no pods for -l fleetdeck.io/model=nothing" in none.err


def running_pods(k8s_cluster: K8sCluster, namespace: str, count: int) -> list[str] | None:
    from kubernetes import client

    core: Any = client.CoreV1Api(k8s_cluster.api_client("admin"))
    pods = core.list_namespaced_pod(namespace).items
    names = sorted(p.metadata.name for p in pods if p.status.phase == "Running")
    return names if len(names) == count else None


def test_coloured_log_lines_keep_colours_on_a_terminal_only(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    deploy(fleetdeck, "digits")
    (pod,) = poll_until("a running pod", lambda: running_pods(k8s_cluster, k8s_namespace, 1))
    k8s_cluster.append_log(k8s_namespace, pod, ["\x1b[31mERROR\x1b[0m boom\x1b]0;title\x07"])
    piped = fleetdeck("logs", pod)
    assert piped.out == "ERROR boom\\x1b]0;title\\x07\n"  # no colour; the title change escaped
    on_terminal = through_a_terminal(fleetdeck, {}, "logs", pod)
    assert "\x1b[31mERROR\x1b[0m boom\\x1b]0;title\\x07" in on_terminal
    no_color = through_a_terminal(fleetdeck, {"NO_COLOR": "1"}, "logs", pod)
    assert "ERROR boom\\x1b]0;title\\x07" in no_color
    assert "\x1b[" not in no_color


def through_a_terminal(fleetdeck: Fleetdeck, env: Mapping[str, str], *args: str) -> str:
    """What ``fleetdeck ARGS`` writes when its stdout is a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    done = subprocess.run(
        [*fleetdeck.command(), *args],
        env={**fleetdeck.env, **env},
        stdout=follower,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert done.returncode == 0, done.stderr
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_status_watch_gives_up_after_its_timeout(fleetdeck: Fleetdeck) -> None:
    deploy(fleetdeck, "digits-big", gpus=64)  # no node has 64 GPUs: it never becomes ready
    waited = fleetdeck("status", "digits-big", "-w", "--timeout", "3s")
    assert waited.code == 1
    assert "timed out waiting for the rollout of digits-big" in waited.err
    assert "digits-big: Progressing 0/1 ready" in waited.out


def test_the_audit_names_the_user_the_api_server_sees(fleetdeck: Fleetdeck) -> None:
    deploy(fleetdeck, "digits")
    scaled = fleetdeck("scale", "digits", "--replicas", "2", "--context", "kwok-oncall")
    assert scaled.code == 0, scaled.err
    entries = fleetdeck("audit", "--json").json()
    assert [(e["action"], e["user"]) for e in entries] == [("deploy", "admin"), ("scale", "oncall")]
    assert entries[1]["context"] == "kwok-oncall"


def test_bash_completes_commands_options_profiles_contexts_and_deployments(
    fleetdeck: Fleetdeck,
) -> None:
    deploy(fleetdeck, "digits-a", "digits-b")
    env = fleetdeck.env
    assert {"describe", "deploy", "delete"} <= set(bash_completions(env, "fleetdeck de"))
    assert "test" in bash_completions(env, "fleetdeck --profile ")
    assert set(bash_completions(env, "fleetdeck ls --context kwok-")) == {
        "kwok-admin",
        "kwok-oncall",
        "kwok-viewer",
    }
    assert set(bash_completions(env, "fleetdeck describe digits-")) == {"digits-a", "digits-b"}
    assert bash_completions(env, "fleetdeck logs deploy/digits-b") == ["deploy/digits-b"]
    assert set(bash_completions(env, "fleetdeck rollout digits-a --version ")) == {"1", "2"}
    assert "--all-containers" in bash_completions(env, "fleetdeck logs --all")
    for shell in ("zsh", "fish"):
        script = fleetdeck("completion", shell)
        assert script.code == 0
        assert "fleetdeck" in script.out
