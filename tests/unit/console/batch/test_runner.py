"""run_batch's contract: bounded parallelism, ordered per-target progress, stop, audit lines.

A recording stand-in for the backend is enough here: this is the runner's own logic. The same
runner against the real cluster is in tests/integration/batch.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import pytest

from console.audit import read_audit
from console.backends.base import Backend
from console.batch.runner import ActionSpec, AuditContext, Progress, TargetState, run_batch
from console.model import ActionResult


class RecordingBackend:
    """Answers every scale; fails the names it is told to; counts requests in flight."""

    def __init__(self, failing: frozenset[str] = frozenset(), gate: threading.Event | None = None):
        self.failing = failing
        self.gate = gate
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.calls: list[str] = []

    def scale(self, namespace: str, name: str, replicas: int, *, dry_run: bool) -> ActionResult:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.calls.append(name)
        if self.gate is not None:
            self.gate.wait(5)
        with self.lock:
            self.in_flight -= 1
        if name in self.failing:
            return ActionResult(f"{namespace}/{name}", False, "403 Forbidden", dry_run)
        return ActionResult(f"{namespace}/{name}", True, f"scaled {name} to {replicas}", dry_run)

    def pause(self, namespace: str, name: str, *, dry_run: bool) -> ActionResult:
        raise RuntimeError("connection reset\nsecond line")


TARGETS = [("models", f"d{i:02}") for i in range(20)]


def fake(backend: RecordingBackend) -> Backend:
    """The recording backend as the batch engine sees it (it answers what these tests send)."""
    return cast(Backend, backend)


def test_results_come_back_in_target_order_and_parallelism_stays_bounded() -> None:
    backend = RecordingBackend(failing=frozenset({"d03"}))
    results = run_batch(fake(backend), ActionSpec("scale", replicas=3), TARGETS, max_parallel=4)
    assert [r.target for r in results] == [f"models/d{i:02}" for i in range(20)]
    assert [r.target for r in results if not r.ok] == ["models/d03"]
    assert 1 <= backend.most_in_flight <= 4


def test_each_target_goes_pending_running_then_ok_or_failed() -> None:
    events: list[Progress] = []
    backend = RecordingBackend(failing=frozenset({"d01"}))
    run_batch(
        fake(backend),
        ActionSpec("scale", replicas=1),
        TARGETS[:3],
        max_parallel=2,
        on_progress=events.append,
    )
    assert [e.state for e in events[:3]] == [TargetState.PENDING] * 3
    for target in ("models/d00", "models/d01", "models/d02"):
        states = [e.state for e in events if e.target == target]
        final = TargetState.FAILED if target == "models/d01" else TargetState.OK
        assert states == [TargetState.PENDING, TargetState.RUNNING, final]
    failed = next(e for e in events if e.state is TargetState.FAILED)
    assert failed.message == "403 Forbidden"


def test_stop_sends_nothing_more_and_says_what_was_not_sent() -> None:
    stop = threading.Event()
    gate = threading.Event()
    backend = RecordingBackend(gate=gate)
    events: list[Progress] = []

    def on_progress(event: Progress) -> None:
        events.append(event)
        if event.state is TargetState.RUNNING:
            stop.set()
            gate.set()

    results = run_batch(
        fake(backend),
        ActionSpec("scale", replicas=1),
        TARGETS,
        max_parallel=1,
        on_progress=on_progress,
        stop=stop,
    )
    assert backend.calls == ["d00"]
    assert results[0].ok
    assert all(r.message == "not sent: the batch was stopped" for r in results[1:])
    assert sum(e.state is TargetState.SKIPPED for e in events) == 19


def test_an_exception_from_the_backend_is_one_failed_target_with_one_line() -> None:
    (result,) = run_batch(fake(RecordingBackend()), ActionSpec("pause"), TARGETS[:1])
    assert not result.ok
    assert result.message == "RuntimeError: connection reset"


def test_every_sent_target_gets_an_audit_line_with_who_and_where(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    context = AuditContext("kwok", "kwok-oncall", "oncall", path=log, extra={"batch": "b1"})
    run_batch(
        fake(RecordingBackend(failing=frozenset({"d01"}))),
        ActionSpec("scale", replicas=2),
        TARGETS[:3],
        dry_run=True,
        audit_context=context,
    )
    entries = read_audit(path=log)
    assert sorted(e.targets[0] for e in entries) == ["models/d00", "models/d01", "models/d02"]
    assert {(e.user, e.profile, e.context, e.action, e.dry_run) for e in entries} == {
        ("oncall", "kwok", "kwok-oncall", "scale", True)
    }
    assert all(e.parameters == {"replicas": 2, "batch": "b1"} for e in entries)
    assert [e.results[0].ok for e in sorted(entries, key=lambda e: e.targets)] == [
        True,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (dict(action="rollout"), "a rollout needs a version"),
        (dict(action="scale"), "scale needs replicas"),
        (dict(action="explode"), "unknown action 'explode'"),
    ],
)
def test_an_incomplete_action_is_refused_before_anything_is_sent(
    spec: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        ActionSpec(**spec)  # type: ignore[arg-type]


def test_a_spec_survives_the_journal_round_trip() -> None:
    spec = ActionSpec("rollout", version=3, verify=False)
    assert ActionSpec.from_json(spec.to_json()) == spec
