"""Runs a journalled plan wave by wave: send, watch the rollouts, bake behind the SLO gates,
undo what failed, and go on or halt.

Each step is journalled before it is sent (see ``journal``), so :meth:`BatchExecutor.run` on a
journal left by a killed process carries on where it stopped: steps with no recorded answer
are sent again, rollouts already applied are watched again, and undo steps are finished.

Failures are counted over the batch. Below the halt threshold a failed target is undone on its
own (rolled back, or paused with ``on_failure = pause``) and the wave goes on; reaching it halts
the batch and undoes the current wave (``rollback-wave``), everything changed so far
(``rollback-all``) or pauses the failed targets (``pause``). An undo goes back to the revision
each target had before the batch, not merely "the previous one".

Rollout health is the backend's view (``ModelDeployment``: state Failed after the progress
deadline, the stuck pod reason while Progressing), read once per tick for the whole fleet and
woken early by the backend's change notifications.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from console import audit
from console.audit import AuditContext
from console.backends.base import Backend, error_line
from console.batch.gates import SloReading, SloSource, violation
from console.batch.journal import BatchState, Journal, Replay, Step
from console.batch.runner import (
    ActionSpec,
    Progress,
    Target,
    TargetState,
    run_batch,
    target_name,
)
from console.model import STUCK_REASONS, ActionResult, DeploymentState, ModelDeployment

POLL_SECONDS = 0.5
GATE_SECONDS = 5.0
READ_COST_FACTOR = 10.0
IDLE_READ_SECONDS = 5.0
# A cluster not live this long halts the batch (a watch that reconnects is not live briefly).
AWAY_GRACE_SECONDS = 5.0
_STUCK = (*sorted(STUCK_REASONS), "Unschedulable")


class EventKind(enum.StrEnum):
    STARTED = "started"
    WAVE_STARTED = "wave-started"
    TARGET = "target"  # one target's step changed
    WAVE_PASSED = "wave-passed"
    HALTED = "halted"
    ABORTED = "aborted"
    DONE = "done"


@dataclass(frozen=True)
class BatchEvent:
    """What the CLI prints and the TUI's Batch screen shows, in the order it happened."""

    kind: EventKind
    message: str
    wave: int | None = None  # 0-based
    target: str | None = None  # namespace/name
    step: Step | None = None


EventCallback = Callable[[BatchEvent], None]


def stuck_reason(row: ModelDeployment) -> str | None:
    """The stuck pod reason the backend reports for a rollout in progress, if any."""
    if row.state is not DeploymentState.PROGRESSING:
        return None
    for reason in _STUCK:
        if reason in row.reason:
            return row.reason
    return None


class BatchExecutor:
    def __init__(
        self,
        backend: Backend,
        journal: Journal,
        *,
        audit_context: AuditContext,
        gate: SloSource | None = None,
        on_event: EventCallback | None = None,
        poll_seconds: float = POLL_SECONDS,
        gate_seconds: float = GATE_SECONDS,
    ) -> None:
        self.backend = backend
        self.journal = journal
        self.state: Replay = journal.replay()
        self.plan = self.state.plan
        self.audit_context = replace(
            audit_context, extra={**audit_context.extra, "batch": journal.id}
        )
        self.gate = gate
        self.on_event = on_event
        self.poll_seconds = poll_seconds
        self.gate_seconds = gate_seconds
        self._halt = threading.Event()
        self._abort = threading.Event()
        self._changed = threading.Event()
        self._lock = threading.Lock()
        self._failures_before = 0
        self._halt_reason = ""
        self._rolled_out: set[Target] = set()  # applied targets whose rollout finished
        self._read_seconds = 0.0  # what the last fleet read cost
        self._handled: set[Target] = set()  # failed targets already undone or kept by design

    # -- control (any thread) -----------------------------------------------------------------
    def halt(self) -> None:
        """Stop after the requests in flight; nothing is undone; ``run`` returns halted."""
        self._halt.set()
        self._changed.set()  # wake a wait for changes

    def abort(self) -> None:
        """Stop and roll back everything this batch changed."""
        self._abort.set()
        self.halt()

    # -- running ------------------------------------------------------------------------------
    def run(self) -> Replay:
        """Run (or resume) the batch until done, halted or aborted; the final state."""
        with self.journal.running():
            self.state = self.journal.replay()
            if self.state.state in (BatchState.DONE, BatchState.ABORTED):
                return self.state
            requested = self.journal.requested()
            self.journal.clear_requests()
            if requested == "abort":
                self._abort.set()
            # Failures a halted batch already answered for do not count again once resumed.
            self._failures_before = self.state.failures_acknowledged
            resumed = self.state.wave >= 0
            self._set_state(BatchState.RUNNING, "resumed" if resumed else "")
            self._audit_step("batch-resume" if resumed else "batch-start", self.plan.targets)
            self._emit(
                EventKind.STARTED,
                ("resumed: " if resumed else "") + "; ".join(self.plan.describe()),
            )
            unsubscribe = self._subscribe()
            try:
                self._finish_undos()
                for number in range(len(self.plan.waves)):
                    if number in self.state.waves_passed:
                        continue
                    if self._stopping():
                        break
                    if not self._run_wave(number):
                        break
                if self._abort.is_set():
                    self._abort_all()
                elif self._halt.is_set():
                    reason = self._halt_reason or "halted by the operator"
                    self._set_state(BatchState.HALTED, reason)
                    self._audit_step("batch-halt", self.plan.targets, reason)
                    self._emit(EventKind.HALTED, reason)
                else:
                    self._set_state(BatchState.DONE, "")
                    self._audit_step("batch-done", self.plan.targets)
                    self._emit(EventKind.DONE, self._summary())
            finally:
                unsubscribe()
            self.state = self.journal.replay()  # what is shown is what the journal says
            return self.state

    def abort_now(self) -> Replay:
        """Roll back what a batch that is not running changed (``fleetdeck batch abort``)."""
        with self.journal.running():
            self.state = self.journal.replay()
            if self.state.state is BatchState.ABORTED:
                return self.state
            self._abort.set()
            self._halt.set()
            unsubscribe = self._subscribe()
            try:
                self._abort_all()
            finally:
                unsubscribe()
            self.state = self.journal.replay()
            return self.state

    # -- one wave -----------------------------------------------------------------------------
    def _run_wave(self, number: int) -> bool:
        """Send, watch and bake one wave; False when the batch stops here."""
        wave = self.plan.waves[number]
        if self.state.wave != number:
            self._record("wave", wave=number, event="start")
            self.state.wave = number
        self._emit(EventKind.WAVE_STARTED, f"wave {number + 1}: {len(wave)} targets", number)
        self._audit_step("batch-wave", wave, f"wave {number + 1} of {len(self.plan.waves)}")
        to_send = [t for t in wave if self.state.targets[t].step in (Step.PENDING, Step.SENT)]
        if to_send:
            # Only traffic from before this wave's first request: a reading that includes the
            # new version would make a regression its own baseline.
            self._take_baselines(to_send, before=self._wave_started(number))
            self._send(number, to_send)
        if self._stopping():
            return False
        if self.plan.rolling:
            self._watch(number)
            if self._stopping():
                return False
            self._bake(number)
            if self._stopping():
                return False
        passed = [t for t in wave if self.state.targets[t].step is Step.APPLIED]
        if passed:
            self._record("healthy", targets=[list(t) for t in passed])
            for target in passed:
                self.state.targets[target].step = Step.HEALTHY
                self._target_event(target, number, Step.HEALTHY, "rolled out and baked")
        self._record("wave", wave=number, event="passed")
        self.state.waves_passed.add(number)
        self._emit(EventKind.WAVE_PASSED, f"wave {number + 1} passed", number)
        return True

    def _wave_started(self, number: int) -> float:
        """When the wave first started (Unix time), from its journal record: a resumed wave
        may already have sent requests, so its baseline must end before they did."""
        for record in self.journal.records():
            started = record["kind"] == "wave" and record.get("event") == "start"
            if started and record.get("wave") == number:
                return datetime.fromisoformat(record["time"]).timestamp()
        return time.time()

    def _take_baselines(self, targets: Sequence[Target], *, before: float) -> None:
        if self.gate is None or self.plan.slo is None:
            return
        values = []
        for target in targets:
            if target in self.state.baselines:
                continue  # resumed: keep the numbers from before the first attempt
            reading = self._reading(target, baseline_before=before)
            if reading is not None:
                self.state.baselines[target] = (reading.p99_ms, reading.error_percent)
                values.append([list(target), [reading.p99_ms, reading.error_percent]])
        if values:
            self._record("baselines", values=values)

    def _reading(
        self, target: Target, *, baseline_before: float | None = None
    ) -> SloReading | None:
        """The target's current numbers, or its baseline from before ``baseline_before``."""
        assert self.gate is not None
        try:
            if baseline_before is not None:
                return self.gate.baseline(target, before=baseline_before)
            return self.gate.reading(target)
        except Exception:  # a metrics hiccup is no verdict on the deployment
            return None

    def _send(self, number: int, targets: Sequence[Target]) -> None:
        rows = self._rows()
        revisions = {
            target_name(t): rows[t].revision
            for t in targets
            if t in rows and rows[t].revision is not None
        }
        for target in targets:
            if self.state.targets[target].revision is None:
                self.state.targets[target].revision = revisions.get(target_name(target))
        self.journal.send("apply", self.plan.spec.action, targets, wave=number, revisions=revisions)
        for target in targets:
            self.state.targets[target].step = Step.SENT

        def on_progress(event: Progress) -> None:
            target = _key(event.target)
            if event.state is TargetState.RUNNING:
                self._target_event(target, number, Step.SENT, event.message)
                if self.journal.requested():
                    self._control_request()
                return
            if event.state is TargetState.SKIPPED:
                self._record(
                    "result", target=list(target), purpose="skip", ok=False, message=event.message
                )
                self.state.targets[target].step = Step.PENDING
                return
            if event.result is None:
                return
            away = "" if event.result.ok else self._cluster_away(grace=0.0)
            if not away and event.result.unanswered:
                # A request that timed out before the probe said so: the cluster, not the
                # target (a patch that timed out may have been made; resending it is the same).
                away = (
                    f"the cluster did not answer ({event.result.message}); "
                    "resume the batch once it answers"
                )
            self._record(
                "result",
                target=list(target),
                purpose="skip" if away else "apply",
                ok=event.result.ok,
                message=event.result.message,
            )
            item = self.state.targets[target]
            item.message = event.result.message
            if event.result.ok:
                item.step = Step.APPLIED if self.plan.rolling else Step.HEALTHY
                self._target_event(target, number, item.step, event.result.message)
            elif away:
                # Not the target's failure: the cluster did not answer. It is sent again when
                # the batch is resumed (a rollout's patch is the same patch again); nothing is
                # undone against a cluster that cannot be reached.
                item.step = Step.PENDING
                self._target_event(target, number, Step.PENDING, event.result.message)
                self._halt_because(away)
            else:
                self._failed(target, number, event.result.message, journalled=True)
                if self._threshold_reached():
                    self._halt.set()  # send no more; the undo follows once in-flight ones end

        run_batch(
            self.backend,
            self.plan.spec,
            targets,
            max_parallel=self.plan.max_parallel,
            on_progress=on_progress,
            stop=self._halt,
            audit_context=replace(
                self.audit_context, extra={**self.audit_context.extra, "wave": number + 1}
            ),
        )
        self._after_failures(number)

    def _watch(self, number: int) -> None:
        """Wait until each applied target of the wave rolled out, or failed."""
        started = time.monotonic()
        first_stuck: dict[Target, float] = {}
        while True:
            waiting = [
                t for t in self.plan.waves[number] if self.state.targets[t].step is Step.APPLIED
            ]
            waiting = [t for t in waiting if t not in self._rolled_out]
            if not waiting or self._stopping():
                return
            rows = self._rows()
            now = time.monotonic()
            for target in waiting:
                row = rows.get(target)
                if row is None:
                    self._failed(target, number, "deployment not found (deleted during the batch?)")
                    continue
                if not self._reflects_change(target, row):
                    continue
                if row.state is DeploymentState.AVAILABLE:
                    self._rolled_out.add(target)
                    self._target_event(target, number, Step.APPLIED, "rolled out")
                elif row.state is DeploymentState.FAILED:
                    self._failed(target, number, row.reason or "rollout failed")
                elif row.state is DeploymentState.PAUSED:
                    self._failed(
                        target, number, "paused during the batch; its rollout cannot finish"
                    )
                elif (stuck := stuck_reason(row)) is not None:
                    since = first_stuck.setdefault(target, now)
                    if now - since >= self.plan.stuck_seconds:
                        self._failed(
                            target, number, f"{stuck} (stuck for {self.plan.stuck_seconds:g} s)"
                        )
                else:
                    first_stuck.pop(target, None)
            if now - started > self.plan.wait_timeout:
                for target in waiting:
                    if (
                        self.state.targets[target].step is Step.APPLIED
                        and target not in self._rolled_out
                    ):
                        self._failed(
                            target, number, f"not rolled out within {self.plan.wait_timeout:g} s"
                        )
            self._after_failures(number)
            self._wait(self._tick())

    def _reflects_change(self, target: Target, row: ModelDeployment) -> bool:
        """Whether the backend's view already holds the change this batch sent."""
        spec = self.plan.spec
        if spec.action == "rollout":
            return row.version == str(spec.version)
        before = self.state.targets[target].revision
        return before is None or (row.revision is not None and row.revision > before)

    def _bake(self, number: int) -> None:
        """Watch the wave for ``bake_seconds``: rollouts that break, SLO gates."""
        wave = self.plan.waves[number]
        gated = self.gate is not None and self.plan.slo is not None and self.plan.bake_seconds > 0
        if self.plan.bake_seconds > 0:
            self._emit(
                EventKind.TARGET,
                f"wave {number + 1}: baking {self.plan.bake_seconds:g} s"
                + (" behind the SLO gates" if gated else ""),
                number,
            )
        end = time.monotonic() + self.plan.bake_seconds
        next_gate = time.monotonic()
        while True:
            live = [t for t in wave if self.state.targets[t].step is Step.APPLIED]
            if not live or self._stopping():
                return
            rows = self._rows()
            for target in live:
                row = rows.get(target)
                if row is not None and row.state is DeploymentState.FAILED:
                    self._failed(target, number, row.reason or "rollout failed during bake")
            now = time.monotonic()
            if gated and now >= next_gate:
                assert self.plan.slo is not None
                next_gate = now + self.gate_seconds
                for target in live:
                    if self.state.targets[target].step is not Step.APPLIED:
                        continue
                    base = self.state.baselines.get(target)
                    baseline = SloReading(*base) if base else None
                    why = violation(self.plan.slo, baseline, self._reading(target))
                    if why is not None:
                        self._failed(target, number, why)
            self._after_failures(number)
            if now >= end:
                return
            # The gates need their readings on time, changes or not.
            self._wait(min(self._tick(), max(0.0, end - now)), until_change=False)

    # -- failures and undo --------------------------------------------------------------------
    def _failed(
        self, target: Target, number: int, reason: str, *, journalled: bool = False
    ) -> None:
        with self._lock:
            item = self.state.targets[target]
            item.step, item.reason = Step.FAILED, reason
            self.state.failed.add(target)
            if not journalled:
                self._record("failed", target=list(target), reason=reason, wave=number)
        self._rolled_out.discard(target)
        self._target_event(target, number, Step.FAILED, reason)
        with contextlib.suppress(OSError):  # the journal has it either way
            self.audit_context.write(
                "batch-failure",
                [target_name(target)],
                [audit.TargetResult(target_name(target), False, reason)],
                {"wave": number + 1},
            )

    def _after_failures(self, number: int) -> None:
        """Undo new failures; halt and undo per the plan once the threshold is reached."""
        failed = [t for t in self.state.in_steps(Step.FAILED) if t not in self._handled]
        if not failed or self._abort.is_set():
            return
        self._handled.update(failed)
        pause = self.plan.on_failure == "pause"
        if not self._threshold_reached():
            self._undo(failed, number, "failed", pause=pause)
            return
        first = self.state.targets[failed[0]].reason
        self._halt_reason = (
            f"{len(self.state.failed)} failed (halt after {self.plan.halt_threshold}); "
            f"first: {target_name(failed[0])}: {first}"
        )
        self._halt.set()
        if pause:
            self._undo(failed, number, "halt", pause=True)
            return
        changed = (Step.SENT, Step.APPLIED, Step.FAILED, Step.HEALTHY)
        if self.plan.on_failure == "rollback-all":
            scope = self.state.in_steps(*changed)
        else:
            scope = [t for t in self.plan.waves[number] if self.state.targets[t].step in changed]
        self._handled.update(scope)
        self._undo(scope, number, "halt")

    def _threshold_reached(self) -> bool:
        """Failures since the operator last resumed a halted batch reach the threshold."""
        return len(self.state.failed) - self._failures_before >= self.plan.halt_threshold

    def _undo(
        self, targets: Sequence[Target], number: int, why: str, *, pause: bool = False
    ) -> None:
        """Roll back (or pause) ``targets``: journalled first, audited, in parallel."""
        if not targets:
            return
        rolling = self.plan.rolling
        if not rolling and not pause:
            return  # a scale or a pause is no revision to go back to: failures stay failed
        purpose = "pause" if pause else "rollback"
        specs: dict[Target, ActionSpec] = {}
        chosen = []
        for target in targets:
            item = self.state.targets[target]
            if pause:
                specs[target] = ActionSpec("pause")
            elif item.revision is None:
                item.step = Step.UNDO_FAILED
                self._record(
                    "result",
                    target=list(target),
                    purpose="rollback",
                    ok=False,
                    message="its revision before the batch is unknown; check by hand",
                )
                continue
            else:
                specs[target] = ActionSpec("rollback", to_revision=item.revision)
            chosen.append(target)
        if not chosen:
            return
        self.journal.send(
            purpose,
            purpose,
            chosen,
            wave=number,
            why=why,
            reasons={target_name(t): self.state.targets[t].reason for t in chosen},
        )
        for target in chosen:
            self.state.targets[target].step = Step.UNDOING
            self.state.targets[target].undo = purpose

        def on_progress(event: Progress) -> None:
            if event.result is None or event.state is TargetState.SKIPPED:
                return
            target = _key(event.target)
            ok = event.result.ok
            self._record(
                "result", target=list(target), purpose=purpose, ok=ok, message=event.result.message
            )
            item = self.state.targets[target]
            item.message = event.result.message
            step = Step.UNDO_FAILED
            if ok:
                step = Step.PAUSED if pause else Step.ROLLED_BACK
            item.step = step
            detail = item.reason + " → " if item.reason else ""
            self._target_event(target, number, step, detail + event.result.message)

        run_batch(
            self.backend,
            specs[chosen[0]],
            chosen,
            max_parallel=self.plan.max_parallel,
            on_progress=on_progress,
            audit_context=replace(
                self.audit_context,
                extra={**self.audit_context.extra, "wave": number + 1, "undo": why},
            ),
            specs=specs,
        )

    def _finish_undos(self) -> None:
        """Undo steps that were sent but never answered (the process died in between)."""
        undoing = self.state.in_steps(Step.UNDOING)
        for purpose in ("rollback", "pause"):
            chosen = [t for t in undoing if self.state.targets[t].undo == purpose]
            if chosen:
                self._undo(chosen, max(self.state.wave, 0), "resumed", pause=purpose == "pause")

    def _abort_all(self) -> None:
        changed = self.state.in_steps(
            Step.SENT, Step.APPLIED, Step.HEALTHY, Step.FAILED, Step.UNDOING
        )
        self._undo(changed, max(self.state.wave, 0), "abort")
        reason = f"aborted: {len(changed)} targets rolled back"
        failed = self.state.in_steps(Step.UNDO_FAILED)
        if failed:
            reason += (
                f"; {len(failed)} could not be (see `fleetdeck batch status {self.journal.id}`)"
            )
        self._set_state(BatchState.ABORTED, reason)
        self._audit_step("batch-abort", changed, reason)
        self._emit(EventKind.ABORTED, reason)

    # -- helpers ------------------------------------------------------------------------------
    def _stopping(self) -> bool:
        if not self._halt.is_set() and self.journal.requested():
            self._control_request()
        if not self._halt.is_set() and (away := self._cluster_away(grace=AWAY_GRACE_SECONDS)):
            self._halt_because(away)
        return self._halt.is_set()

    def _cluster_away(self, *, grace: float) -> str:
        """Why the batch must stop because its cluster does not answer ("" while it does, or
        while it has been away less than ``grace`` seconds): its rows are stale and its
        requests cannot go out, so nothing is judged failed and nothing is undone there."""
        try:
            connection = self.backend.connection()
        except Exception as exc:  # the backend cannot even say: treat as away
            return f"the cluster's state cannot be read ({error_line(exc)})"
        if connection.live:
            return ""
        since = connection.since
        if (datetime.now(since.tzinfo) - since).total_seconds() < grace:
            return ""
        detail = f" ({connection.detail})" if connection.detail else ""
        return (
            f"the cluster has not answered since {since.astimezone().strftime('%H:%M:%S')}"
            f"{detail}; resume the batch once it answers"
        )

    def _halt_because(self, reason: str) -> None:
        if not self._halt_reason:
            self._halt_reason = reason
        self.halt()

    def _control_request(self) -> None:
        requested = self.journal.requested()
        self.journal.clear_requests()
        if requested == "abort":
            self.abort()
        elif requested == "halt":
            self.halt()

    def _rows(self) -> dict[Target, ModelDeployment]:
        started = time.perf_counter()
        rows = {row.key: row for row in self.backend.deployments()}
        self._read_seconds = time.perf_counter() - started
        return rows

    def _tick(self) -> float:
        """Seconds between fleet reads: at least ``poll_seconds``, and ten times what a read
        costs, so watching a thousand rollouts keeps reads under a tenth of a core."""
        return max(self.poll_seconds, READ_COST_FACTOR * self._read_seconds)

    def _subscribe(self) -> Callable[[], None]:
        return self.backend.subscribe(self._changed.set)

    def _wait(self, seconds: float, *, until_change: bool = True) -> None:
        """At least ``seconds`` between fleet reads, then until the backend reports a change
        (at most ``IDLE_READ_SECONDS`` more): a quiet fleet is not re-read for nothing."""
        if self._halt.wait(seconds):
            return
        if until_change and not self._changed.is_set():
            self._changed.wait(IDLE_READ_SECONDS)
        self._changed.clear()  # the next read sees everything up to now

    def _record(self, kind: str, **fields: Any) -> None:
        self.journal.append(kind, **fields)

    def _set_state(self, state: BatchState, reason: str) -> None:
        self._record("state", state=state.value, reason=reason)
        self.state.state, self.state.reason = state, reason

    def _audit_step(self, action: str, targets: Sequence[Target], message: str = "") -> None:
        with contextlib.suppress(OSError):  # the journal has it either way
            self.audit_context.write(
                action,
                [target_name(t) for t in targets],
                [audit.TargetResult(f"batch {self.journal.id}", True, message)] if message else [],
                {**self.plan.spec.parameters(), "action": self.plan.spec.action},
            )

    def _emit(
        self,
        kind: EventKind,
        message: str,
        wave: int | None = None,
        target: Target | None = None,
        step: Step | None = None,
    ) -> None:
        if self.on_event is not None:
            self.on_event(
                BatchEvent(kind, message, wave, target_name(target) if target else None, step)
            )

    def _target_event(self, target: Target, number: int, step: Step, message: str) -> None:
        self._emit(EventKind.TARGET, message, number, target, step)

    def _summary(self) -> str:
        counts = self.state.counts()
        parts = [f"{n} {step.value}" for step, n in counts.items() if n]
        return f"batch {self.journal.id} done: " + ", ".join(parts)


def _key(name: str) -> Target:
    namespace, _, rest = name.partition("/")
    return (namespace, rest)


def dry_run(
    backend: Backend,
    spec: ActionSpec,
    targets: Sequence[Target],
    max_parallel: int,
    audit_context: AuditContext | None = None,
) -> list[ActionResult]:
    """The server's verdict on every target of the plan (``dryRun=All``); nothing is stored."""
    return run_batch(
        backend, spec, targets, max_parallel=max_parallel, dry_run=True, audit_context=audit_context
    )
