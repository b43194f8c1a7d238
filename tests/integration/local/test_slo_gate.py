"""The p99 gate on the local runtime, with real predictors under real load: a version that is
really slower (a much wider and deeper model of the same digits) is caught during bake and
rolled back automatically, the batch halts before touching the rest, and no client request
fails; the collector's history shows the regression and the recovery."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.backends.local import LocalBackend
from console.batch.executor import BatchEvent, BatchExecutor
from console.batch.gates import CollectorSource
from console.batch.journal import BatchState, Journal, Step
from console.batch.plan import SloThresholds, make_plan
from console.batch.runner import ActionSpec, AuditContext, Target
from console.metrics import MetricsCollector, direct_source
from console.metrics.readings import DeploymentMetrics
from console.profile import BatchSettings, Profile, Quota
from console.profile_reader import parse_waves
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import (
    local_backend,
    stop_every_agent,
    use_temporary_xdg,
    write_local_profile,
)
from tests.integration.local.test_local_runtime import deploy, fleetdeck
from tests.support.gateway_load import LoadGenerator
from tests.support.models import TinyModel

WINDOW_S = 3.0  # the collector's window: a bake of 8 s sees only the new version
INTERVAL_S = 0.5
RATIO = 2.0
NAMES = ("digits-a", "digits-b", "digits-c")


@pytest.fixture
def backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_store: TinyModel
) -> Iterator[LocalBackend]:
    use_temporary_xdg(tmp_path / "home", monkeypatch)
    profile: Profile = write_local_profile(slow_store.store_root)
    try:
        with local_backend(profile) as backend:
            yield backend
    finally:
        stop_every_agent(profile)


def p99s(history: list[DeploymentMetrics], after: float, before: float) -> list[float]:
    return [m.p99_ms for m in history if after <= m.at <= before and m.p99_ms is not None]


def test_a_slower_version_is_caught_by_the_p99_gate_and_rolled_back_with_no_failed_request(
    backend: LocalBackend, slow_store: TinyModel, tmp_path: Path
) -> None:
    for name in NAMES:
        deploy(backend, name)
    targets: list[Target] = [("default", name) for name in NAMES]
    collector = MetricsCollector(direct_source(backend), WINDOW_S, interval_s=INTERVAL_S)
    loads = [
        LoadGenerator(backend, name, slow_store.images, threads=2 if name == NAMES[0] else 1)
        for name in NAMES
    ]
    plan = make_plan(
        ActionSpec("rollout", version=2),
        targets,
        BatchSettings(
            waves=parse_waves("1,100%"),
            max_parallel=4,
            halt_after=Quota(count=1),
            bake_seconds=8.0,
            on_failure="rollback-wave",
        ),
        slo=SloThresholds(p99_ratio=RATIO, error_percent=1.0),
    )
    journal = Journal.create(plan, {"profile": "local"}, tmp_path / "batches")
    events: list[BatchEvent] = []
    executor = BatchExecutor(
        backend,
        journal,
        audit_context=AuditContext("local", None, "alice", path=tmp_path / "audit.jsonl"),
        gate=CollectorSource(collector),
        on_event=events.append,
        poll_seconds=0.2,
        gate_seconds=1.0,
    )
    with collector:
        for load in loads:
            load.__enter__()
        try:
            # Baselines need traffic from before the rollout: a few full windows of it.
            poll_until(
                "a p99 for every target",
                lambda: all((m := collector.get(t)) and m.p99_ms for t in targets),
                timeout=60,
            )
            time.sleep(WINDOW_S)
            rollout_started = time.time()
            state = executor.run()
            rolled_back = time.time()
            # The recovery: the old version's predictors serving again, a window of them.
            first = targets[0]
            poll_until(
                "a p99 of the rolled-back version",
                lambda: p99s(collector.history(first), rolled_back + WINDOW_S, time.time()) or None,
                timeout=60,
            )
        finally:
            for load in loads:
                load.__exit__(None, None, None)

    failed = state.targets[first]
    baseline_p99 = state.baselines[first][0]
    assert baseline_p99 is not None
    assert state.state is BatchState.HALTED
    assert state.failed == {first}
    assert failed.step is Step.ROLLED_BACK
    reason = re.fullmatch(rf"p99 ([\d.]+) ms > {RATIO:g} × baseline ([\d.]+) ms", failed.reason)
    assert reason is not None, failed.reason
    assert float(reason[2]) == pytest.approx(baseline_p99, rel=0.05)  # as rounded for reading
    assert "first: default/digits-a: p99 " in state.reason
    assert backend.deployment(*first).version == "1"  # type: ignore[union-attr]
    for other in targets[1:]:
        assert state.targets[other].step is Step.PENDING
        row = backend.deployment(*other)
        assert row is not None
        assert (row.version, row.revision) == ("1", 1)  # never sent anything
    assert sum(load.sent for load in loads) > 0
    assert [f for load in loads for f in load.failures] == []

    history = collector.history(first)
    before = p99s(history, 0.0, rollout_started)
    during = p99s(history, rollout_started, rolled_back)
    after = p99s(history, rolled_back + WINDOW_S, time.time())
    seen = f"p99 ms before {before}, during {during}, after {after}"
    assert before, seen
    assert during, seen
    assert after, seen
    assert max(during) > RATIO * baseline_p99, seen  # the regression, as the plots draw it
    assert after[-1] < max(during) / RATIO, seen  # and the recovery


def test_fleetdeck_rollout_on_the_local_profile_reports_the_p99_failure_and_rolls_it_back(
    backend: LocalBackend, slow_store: TinyModel
) -> None:
    # The CLI's collector comes from the profile: a window the 8 s bake outlasts.
    profile_file = Path(os.environ["XDG_CONFIG_HOME"]) / "fleetdeck" / "profiles" / "local.toml"
    with profile_file.open("a") as out:
        out.write(f"\n[metrics]\nwindow_seconds = {WINDOW_S}\ninterval_seconds = {INTERVAL_S}\n")
    for name in NAMES:
        deploy(backend, name)
    loads = [LoadGenerator(backend, name, slow_store.images, threads=1) for name in NAMES]
    for load in loads:
        load.__enter__()
    try:
        time.sleep(2 * WINDOW_S)  # traffic from before the rollout, for the baselines
        done = fleetdeck(
            "--profile", "local", "rollout", *NAMES, "--version", "2", "--yes",
            "--waves", "1,100%", "--halt-after", "1", "--bake", "8",
            "--slo-p99-ratio", f"{RATIO:g}",
        )  # fmt: skip
    finally:
        for load in loads:
            load.__exit__(None, None, None)

    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if line.startswith("default/digits-a: ")]
    gate = rf"p99 [\d.]+ ms > {RATIO:g} × baseline [\d.]*[1-9][\d.]* ms"  # a baseline > 0
    assert any(re.fullmatch(rf"default/digits-a: failed: {gate}", line) for line in failed), (
        done.stdout
    )
    assert any(re.match(rf"default/digits-a: rolled-back: {gate} → ", line) for line in failed), (
        done.stdout
    )
    assert "halted - 1 failed (halt after 1); first: default/digits-a: p99 " in done.stdout
    versions = {name: backend.deployment("default", name) for name in NAMES}
    assert {name: row.version if row else None for name, row in versions.items()} == {
        name: "1" for name in NAMES
    }
    assert [f for load in loads for f in load.failures] == []
