"""The local runtime with real processes: an agent, predictors behind its gateway, training
runs, and the CLI, on a real trained model."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from console.backends.base import LogRequest
from console.backends.local import LocalBackend, LocalError
from console.local.launch import paths_for, running_agent, stop_agent
from console.model import DeploymentState, DeployRequest, TrainingRequest
from console.profile import Profile, TrainingSettings, load_profile
from serving.store import ModelStore
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import (
    DigitsStore,
    local_backend,
    predictor_pids,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.support.cli import run_fleetdeck
from tests.support.gateway_load import LoadGenerator, predict
from tests.support.processes import pids_where

ROOT = Path(__file__).resolve().parents[3]

__all__ = ["LoadGenerator"]  # bench/console/oncall.py takes it from here


def deploy(backend: LocalBackend, name: str, version: int = 1, replicas: int = 1) -> None:
    result = backend.deploy(DeployRequest(name, "digits", version, "default", replicas))
    assert result.ok, result.message
    wait_state(backend, name, DeploymentState.AVAILABLE)


def wait_state(
    backend: LocalBackend, name: str, state: DeploymentState, version: str | None = None
) -> Any:
    def reached() -> Any:
        row = backend.deployment("default", name)
        ok = row is not None and row.state is state and version in (None, row.version)
        return row if ok else None

    return poll_until(f"{name} {state.value} {version or ''}", reached, timeout=120)


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args)


def test_a_deployed_model_answers_predictions_through_the_gateway(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    deploy(backend, "digits", replicas=2)
    answer = predict(backend, "digits", digits_store.images[:3])
    assert answer.status_code == 200, answer.text
    scores = answer.json()["predictions"]
    assert len(scores) == 3
    assert all(len(row) == 10 for row in scores)
    endpoints = backend.endpoints("default", "digits")
    assert sorted(pod for pod, _ in endpoints) == ["digits-1-0", "digits-1-1"]
    for _, url in endpoints:
        assert requests.get(f"{url}/v2/health/ready", timeout=10).json() == {"ready": True}
    assert [(p.phase, p.ready, p.restarts) for p in backend.pods("default", "digits")] == [
        ("Running", True, 0),
        ("Running", True, 0),
    ]
    logs = fleetdeck("logs", "deploy/digits", "--tail", "1")
    assert logs.returncode == 0, logs.stderr
    assert sorted(line.split(" ", 1)[0] for line in logs.stdout.splitlines()) == [
        "[digits-1-0]",
        "[digits-1-1]",
    ]
    unknown = requests.get(f"{backend.gateway_url()}/models/nothing/v2", timeout=10)
    assert unknown.status_code == 404
    assert "no deployment named 'nothing'" in unknown.json()["error"]


def test_a_rollout_and_a_rollback_under_load_fail_no_request(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    deploy(backend, "digits", replicas=2)
    with LoadGenerator(backend, "digits", digits_store.images) as load:
        poll_until("some traffic", lambda: load.sent >= 20)
        assert backend.rollout("default", "digits", 2).ok
        wait_state(backend, "digits", DeploymentState.AVAILABLE, version="2")
        poll_until("old replicas gone", lambda: len(backend.pods("default", "digits")) == 2)
        before = load.sent
        poll_until("traffic on version 2", lambda: load.sent >= before + 20)
        assert backend.rollback("default", "digits").ok
        wait_state(backend, "digits", DeploymentState.AVAILABLE, version="1")
        poll_until("old replicas gone", lambda: len(backend.pods("default", "digits")) == 2)
        before = load.sent
        poll_until("traffic after the rollback", lambda: load.sent >= before + 20)
    assert load.failures == []
    assert [(r.number, r.model_version) for r in backend.history("default", "digits")] == [
        (2, "2"),
        (3, "1"),
    ]
    assert {p.revision for p in backend.pods("default", "digits")} == {3}


def test_a_killed_predictor_is_restarted_and_its_restart_counted(
    backend: LocalBackend, profile: Profile, digits_store: DigitsStore
) -> None:
    deploy(backend, "digits")
    (pid,) = predictor_pids(profile)
    os.kill(pid, signal.SIGKILL)

    def restarted() -> Any:
        pods = backend.pods("default", "digits")
        return pods if pods and pods[0].restarts == 1 and pods[0].ready else None

    (pod,) = poll_until("the predictor back, restart counted", restarted, timeout=120)
    assert pod.name == "digits-1-0"
    assert "killed by SIGKILL" in pod.reason
    assert predictor_pids(profile) != [pid]
    assert predict(backend, "digits", digits_store.images[:1]).status_code == 200
    previous = fleetdeck("logs", "--previous", "pod-does-not-matter")
    assert previous.returncode == 1
    earlier = fleetdeck("logs", "--previous", "digits-1-0")
    assert earlier.returncode == 0, earlier.stderr
    assert "listening on http://127.0.0.1:" in earlier.stdout


def test_a_rollout_to_a_corrupted_version_fails_with_the_reason_and_the_old_keeps_serving(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    deploy(backend, "digits")
    corrupted = digits_store.publish_copy(1)
    for name in ("model.tflite", "model.int8.tflite"):
        path = digits_store.root / "digits" / str(corrupted) / name
        path.write_bytes(path.read_bytes()[:-16] + b"\0" * 16)

    assert backend.rollout("default", "digits", corrupted).ok
    row = wait_state(backend, "digits", DeploymentState.FAILED)
    assert row.version == str(corrupted)
    assert "revision 2: digits-2-0:" in row.reason
    assert "sha256 mismatch" in row.reason
    assert predict(backend, "digits", digits_store.images[:1]).status_code == 200
    status = fleetdeck("status", "digits")
    assert status.returncode == 1
    assert "sha256 mismatch" in status.stdout

    assert backend.rollback("default", "digits").ok
    wait_state(backend, "digits", DeploymentState.AVAILABLE, version="1")
    assert predict(backend, "digits", digits_store.images[:1]).status_code == 200
    # As kubectl's undo reuses the old ReplicaSet: the predictor that kept serving is revision 3.
    poll_until(
        "the failed revision's predictor gone",
        lambda: (
            [(p.name, p.revision) for p in backend.pods("default", "digits")] == [("digits-1-0", 3)]
        ),
    )


def test_every_deployment_serves_again_after_the_agent_stops_and_starts(
    profile: Profile, digits_store: DigitsStore
) -> None:
    with local_backend(profile) as console:  # an open console, across the agent's restart
        changes = threading.Event()
        console.subscribe(changes.set)
        deploy(console, "digits")
        deploy(console, "digits-b", replicas=2)
        assert console.rollout("default", "digits-b", 2).ok
        wait_state(console, "digits-b", DeploymentState.AVAILABLE, version="2")
        gateway = console.gateway_url()

        assert stop_agent(profile) is not None
        assert predictor_pids(profile) == []
        assert running_agent(paths_for(profile)) is None
        lost = poll_until("the console sees the agent gone", lambda: not console.connection().live)
        assert lost is True
        assert "reconnecting" in console.connection().detail

        # Cleared before the restart: the agent may have every predictor serving again by the
        # time the console reconnects, so what it must notice is the reconnection's news.
        changes.clear()
        assert fleetdeck("agent", "start").returncode == 0
        poll_until("the console reconnected", lambda: console.connection().live)
        for name, version in (("digits", "1"), ("digits-b", "2")):
            wait_state(console, name, DeploymentState.AVAILABLE, version=version)
        assert changes.is_set()

    with local_backend(profile) as backend:
        assert backend.gateway_url() == gateway
        for name in ("digits", "digits-b"):
            assert predict(backend, name, digits_store.images[:1]).status_code == 200
        assert [d.name for d in backend.deployments()] == ["digits", "digits-b"]
        assert len(backend.pods("default", "digits-b")) == 2
        assert [r.model_version for r in backend.history("default", "digits-b")] == ["1", "2"]


def test_kubernetes_only_concepts_are_refused_with_a_reason(backend: LocalBackend) -> None:
    gpus = backend.deploy(DeployRequest("digits", "digits", 1, "default", 1, gpus=1))
    assert not gpus.ok
    assert "--gpus needs a Kubernetes profile" in gpus.message
    assert backend.deployments() == []
    with_selector = dataclasses.replace(
        backend.profile, training=TrainingSettings(node_selector={"gpu": "a100"})
    )
    scheduled = LocalBackend(with_selector, namespaces=["default"])
    try:
        (refused,) = scheduled.train(TrainingRequest("digits", "/data"))
    finally:
        scheduled.close()
    assert not refused.ok
    assert "node_selector" in refused.message
    assert backend.jobs() == []
    with pytest.raises(LocalError, match="one process each"):
        list(backend.logs(_log_request("x", container="sidecar")))


def test_the_local_runtime_serves_from_a_store_on_hdfs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digits_store: DigitsStore, hdfs_root: str
) -> None:
    local = ModelStore(str(digits_store.root))
    manifest = local.manifest("digits", 1)
    source = tmp_path / "v1"
    shutil.copytree(digits_store.root / "digits" / "1", source)
    (source / "manifest.json").unlink()
    ModelStore(hdfs_root).publish(
        "digits", source, lambda v, files: dataclasses.replace(manifest, version=v, files=files)
    )
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile = write_local_profile(hdfs_root)
    try:
        with local_backend(profile) as backend:
            deploy(backend, "digits")
            assert predict(backend, "digits", digits_store.images[:2]).status_code == 200
            missing = backend.deploy(DeployRequest("other", "digits", 5, "default"))
            assert "version 5 of model 'digits' not found" in missing.message
    finally:
        stop_every_agent(profile)


def test_two_clis_deploying_at_once_start_one_agent_and_keep_the_state_whole(
    profile: Profile,
) -> None:
    commands = [
        ["deploy", "alpha", "--model", "digits", "--version", "1"],
        ["deploy", "beta", "--model", "digits", "--version", "2"],
        ["deploy", "twin", "--model", "digits", "--version", "1"],
        ["deploy", "twin", "--model", "digits", "--version", "2"],
    ]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "console", *c],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    outcomes = [(p.wait(300), *p.communicate()) for p in processes]
    assert [code for code, _, _ in outcomes[:2]] == [0, 0], outcomes
    twins = sorted(code for code, _, _ in outcomes[2:])
    assert twins == [0, 1], outcomes
    assert any("already exists" in out for _, out, _ in outcomes[2:])

    listed = fleetdeck("ls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert sorted(r["name"] for r in rows) == ["alpha", "beta", "twin"]
    agents = fleetdeck("agent", "status", "--json")
    assert agents.returncode == 0
    pid = json.loads(agents.stdout)["pid"]
    assert [p for p in _agent_pids(profile)] == [pid]


def _agent_pids(profile: Profile) -> list[int]:
    state = str(paths_for(profile).root)
    return pids_where(lambda words: "console.local" in words and state in words)


def test_a_training_jobs_logs_follow_live_and_it_publishes_a_version(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    store = ModelStore(str(digits_store.root))
    before = store.versions("digits")
    (result,) = backend.train(_training(digits_store, epochs=3))
    assert result.ok, result.message
    name = result.target.split("/", 1)[1]
    poll_until("the job's log", lambda: backend.job_pods("default", name), timeout=60)
    follow = subprocess.Popen(
        [sys.executable, "-m", "console", "logs", "-f", f"job/{name}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert follow.stdout is not None
    seen_running = False
    for line in follow.stdout:
        if "epoch 1/3" in line:
            seen_running = _phase(backend, name) == "Running"
            break
    rest = follow.stdout.read()
    assert follow.wait(300) == 0
    assert seen_running, "the first epoch's line arrived only after the job had ended"
    assert "epoch 3/3" in rest
    poll_until("job succeeded", lambda: _phase(backend, name) == "Succeeded", timeout=120)
    assert len(store.versions("digits")) == len(before) + 1


def test_a_cancelled_training_job_publishes_nothing(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    store = ModelStore(str(digits_store.root))
    before = store.versions("digits")
    (result,) = backend.train(_training(digits_store, epochs=50))
    name = result.target.split("/", 1)[1]
    poll_until("the job's log", lambda: backend.job_pods("default", name), timeout=60)
    lines = backend.logs(_log_request(name))
    next(line for line in lines if "epoch 1/50" in line)
    cancelled = fleetdeck("cancel", f"job/{name}")
    assert cancelled.returncode == 0, cancelled.stderr
    poll_until("job ended", lambda: _phase(backend, name) == "Failed", timeout=120)
    (job,) = [j for j in backend.jobs() if j.name == name]
    assert job.pending_reason.startswith("Cancelled")
    assert store.versions("digits") == before


def _training(store: DigitsStore, epochs: int) -> Any:
    return TrainingRequest("digits", str(store.data), epochs=epochs, params={"width": 8})


def _log_request(name: str, container: str | None = None) -> Any:
    return LogRequest([name], "default", follow=True, container=container)


def _phase(backend: LocalBackend, name: str) -> str:
    return next((j.phase.value for j in backend.jobs() if j.name == name), "")


def test_a_sweeps_trials_run_at_most_two_at_once_and_each_publishes(
    backend: LocalBackend, digits_store: DigitsStore
) -> None:
    store = ModelStore(str(digits_store.root))
    before = len(store.versions("digits"))
    request = TrainingRequest("digits", str(digits_store.data), epochs=1, grid={"width": (4, 6, 8)})
    results = backend.train(request)
    assert [r.ok for r in results] == [True, True, True]
    names = {r.target.split("/", 1)[1] for r in results}
    most_running = 0

    def finished() -> bool:
        nonlocal most_running
        phases = [j.phase.value for j in backend.jobs() if j.name in names]
        most_running = max(most_running, phases.count("Running"))
        return phases.count("Succeeded") == 3

    poll_until("every trial succeeded", finished, timeout=300)
    assert most_running == 2
    assert {j.sweep for j in backend.jobs() if j.name in names} != {None}
    assert len(store.versions("digits")) == before + 3


def test_following_a_queued_jobs_log_waits_for_it_to_start_and_shows_its_run(
    profile: Profile, digits_store: DigitsStore
) -> None:
    """``[local] training_parallel = 1``: the second job is Pending, with no log yet, while the
    first runs; following its log waits, then streams its run to the end."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "fleetdeck" / "profiles" / "local.toml"
    path.write_text(path.read_text() + "training_parallel = 1\n")  # [local] is the last table
    with local_backend(load_profile("local")) as backend:
        (first,) = backend.train(_training(digits_store, epochs=3))
        (queued,) = backend.train(_training(digits_store, epochs=1))
        name = queued.target.split("/", 1)[1]
        poll_until("the second job queued", lambda: _phase(backend, name) == "Pending")
        lines = list(backend.logs(_log_request(name)))
        assert any("epoch 1/1" in line for line in lines)
        first_name = first.target.split("/", 1)[1]
        poll_until(
            "both ended", lambda: {_phase(backend, n) for n in (first_name, name)} == {"Succeeded"}
        )


def test_a_job_running_when_the_agent_stops_runs_again_when_it_starts(
    profile: Profile, digits_store: DigitsStore
) -> None:
    store = ModelStore(str(digits_store.root))
    before = store.versions("digits")
    with local_backend(profile) as backend:
        (result,) = backend.train(_training(digits_store, epochs=50))
        name = result.target.split("/", 1)[1]
        poll_until("the job's log", lambda: backend.job_pods("default", name), timeout=60)
        next(line for line in backend.logs(_log_request(name)) if "epoch 1/50" in line)
    assert stop_agent(profile) is not None
    assert store.versions("digits") == before  # stopped mid-run: nothing published

    with local_backend(profile) as backend:
        (job,) = [j for j in backend.jobs() if j.name == name]
        assert job.phase.value in ("Pending", "Running")

        def first_epochs() -> int:
            request = LogRequest([name], "default")
            return sum("epoch 1/50" in line for line in backend.logs(request))

        poll_until("a second run's first epoch", lambda: first_epochs() == 2, timeout=120)
        assert backend.cancel_job("default", name).ok
        poll_until("job ended", lambda: _phase(backend, name) == "Failed", timeout=120)
    assert len([j for j in backend.jobs() if j.name == name]) == 1
