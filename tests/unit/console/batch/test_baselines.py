"""Each target's SLO baseline is its traffic from before its wave started, never after.

The fleet here is an in-memory stand-in (rollouts finish at once): what is under test is which
moment the executor asks the metrics for. The gates against real predictors under load are in
tests/integration/local/test_slo_gate.py.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from console.backends.base import Backend, Connection
from console.batch.executor import BatchExecutor
from console.batch.gates import SloReading
from console.batch.journal import Journal
from console.batch.plan import SloThresholds, make_plan
from console.batch.runner import ActionSpec, AuditContext, Target
from console.model import ActionResult, DeploymentState, ModelDeployment
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves

TARGETS: list[Target] = [("models", "a"), ("models", "b")]


class InstantFleet:
    """Deployments whose rollouts are Available the moment they are sent."""

    def __init__(self) -> None:
        self.rows = {
            t: ModelDeployment(
                t[1], t[0], "digits", "1", 1, 1, 1, 1, DeploymentState.AVAILABLE, "", 1, None
            )
            for t in TARGETS
        }
        self.sent_at: dict[Target, float] = {}
        self.listeners: list[Callable[[], None]] = []

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        self.listeners.append(on_change)
        return lambda: self.listeners.remove(on_change)

    def deployments(self) -> list[ModelDeployment]:
        return list(self.rows.values())

    def deployment(self, namespace: str, name: str) -> ModelDeployment | None:
        return self.rows.get((namespace, name))

    def connection(self) -> Connection:
        return Connection(True, datetime.now(UTC))  # a cluster that always answers

    def rollout(
        self, namespace: str, name: str, version: int, *, dry_run: bool, verify: bool = True
    ) -> ActionResult:
        row = self.rows[(namespace, name)]
        self.sent_at[(namespace, name)] = time.time()
        self.rows[(namespace, name)] = dataclasses.replace(
            row, version=str(version), revision=(row.revision or 0) + 1
        )
        for listener in self.listeners:
            listener()
        return ActionResult(f"{namespace}/{name}", True, "rolled out", dry_run)


class RecordingGate:
    """Remembers the moment each baseline was asked for; no verdicts (no current numbers)."""

    def __init__(self) -> None:
        self.before: dict[Target, float | None] = {}

    def baseline(self, target: Target, before: float | None = None) -> SloReading | None:
        self.before[target] = before
        return SloReading(5.0, 0.0)

    def reading(self, target: Target) -> SloReading | None:
        return None


def executor_for(tmp_path: Path, fleet: InstantFleet, gate: RecordingGate) -> BatchExecutor:
    settings = BatchSettings(
        waves=parse_waves("1,100%"), halt_after=Quota(count=1), bake_seconds=0.2
    )
    plan = make_plan(
        ActionSpec("rollout", version=2), TARGETS, settings, slo=SloThresholds(p99_ratio=2.0)
    )
    journal = Journal.create(plan, {"profile": "test"}, tmp_path / "batches")
    context = AuditContext("test", None, "alice", path=tmp_path / "audit.jsonl")
    return BatchExecutor(
        cast(Backend, fleet), journal, audit_context=context, gate=gate, poll_seconds=0.05
    )


def test_each_waves_baseline_ends_when_that_wave_started_before_its_first_request(
    tmp_path: Path,
) -> None:
    fleet, gate = InstantFleet(), RecordingGate()
    started = time.time()

    executor_for(tmp_path, fleet, gate).run()

    first, second = TARGETS
    assert set(gate.before) == {first, second}
    before_first, before_second = gate.before[first], gate.before[second]
    assert before_first is not None
    assert before_second is not None
    assert started <= before_first <= fleet.sent_at[first]
    # The second wave's own start, after the first wave's rollout and bake.
    assert fleet.sent_at[first] <= before_second <= fleet.sent_at[second]


def test_a_resumed_wave_keeps_the_moment_it_first_started(tmp_path: Path) -> None:
    fleet, gate = InstantFleet(), RecordingGate()
    executor = executor_for(tmp_path, fleet, gate)
    # A process that started wave 1 and sent its request, then died before any answer.
    executor.journal.append("wave", wave=0, event="start")
    first_started = time.time()
    executor.journal.send("apply", "rollout", [TARGETS[0]], wave=0, revisions={})
    time.sleep(0.05)

    resumed = BatchExecutor(
        cast(Backend, fleet),
        Journal.open(executor.journal.id, tmp_path / "batches"),
        audit_context=executor.audit_context,
        gate=gate,
        poll_seconds=0.05,
    )
    resumed.run()

    before = gate.before[TARGETS[0]]
    assert before is not None
    assert before <= first_started  # not the resume: the request may be serving already
