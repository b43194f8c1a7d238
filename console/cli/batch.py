"""The CLI's batch commands: ``rollout`` in waves and ``batch list|status|resume|halt|abort``.

``console.cli.parser`` adds the flags and ``console.cli.commands`` routes here; everything
printed is for the operator, one line per event that matters (failures, undo, waves), not one
per target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from console.audit import AuditContext
from console.backends.base import Backend
from console.batch import lifecycle
from console.batch.executor import BatchEvent, BatchExecutor, EventKind
from console.batch.gates import CollectorSource, SloSource
from console.batch.journal import (
    BatchState,
    Journal,
    JournalError,
    Replay,
    Step,
    describe,
    list_journals,
)
from console.batch.plan import Plan, make_plan, settings_from, thresholds_from
from console.batch.runner import ActionSpec, Target
from console.cli.confirm import confirm
from console.cli.printing import dump, output_of, print_table
from console.core import actions, guard
from console.core.clusters import ClusterSessions
from console.core.session import Session
from console.core.targets import Target as WholeTarget
from console.model import ActionResult
from console.profile import Profile
from console.views.format import printable, to_json

WAVE_FLAGS = ("waves", "max_parallel", "halt_after", "bake", "slo_p99_ratio", "slo_error_percent",
              "on_failure", "wave_by")  # fmt: skip
_LOUD_STEPS = frozenset({Step.FAILED, Step.ROLLED_BACK, Step.PAUSED, Step.UNDO_FAILED})


class BatchFailed(Exception):
    """Raised for a refusal (exit 1); the message says why and what to do."""


def wants_waves(args: argparse.Namespace) -> bool:
    return any(getattr(args, flag, None) is not None for flag in WAVE_FLAGS)


def reads_only(args: argparse.Namespace) -> bool:
    """``batch list``/``status``/``halt`` need no cluster connection."""
    return args.command == "batch" and args.batch_command in ("list", "status", "halt")


@dataclass(frozen=True)
class WaveOptions:
    """The plan flags as typed (None: the profile's default)."""

    waves: str | None = None
    max_parallel: int | None = None
    halt_after: str | None = None
    bake: float | None = None
    slo_p99_ratio: float | None = None
    slo_error_percent: float | None = None
    on_failure: str | None = None
    stuck_seconds: float = 60.0


def wave_options(args: argparse.Namespace) -> WaveOptions:
    return WaveOptions(
        waves=args.waves,
        max_parallel=args.max_parallel,
        halt_after=args.halt_after,
        bake=args.bake,
        slo_p99_ratio=args.slo_p99_ratio,
        slo_error_percent=args.slo_error_percent,
        on_failure=args.on_failure,
        stuck_seconds=args.stuck_seconds,
    )


# -- rollout in waves -------------------------------------------------------------------------
def _plan(
    profile: Profile, spec: ActionSpec, targets: Sequence[Target], options: WaveOptions
) -> Plan:
    """The plan for ``targets`` from the profile's batch settings with the flags on top."""
    settings = settings_from(
        profile,
        waves=options.waves,
        max_parallel=options.max_parallel,
        halt_after=options.halt_after,
        bake=options.bake,
        on_failure=options.on_failure,
    )
    thresholds = thresholds_from(
        profile, p99_ratio=options.slo_p99_ratio, error_percent=options.slo_error_percent
    )
    return make_plan(spec, targets, settings, slo=thresholds, stuck_seconds=options.stuck_seconds)


def rollout_in_waves(
    session: Session,
    spec: ActionSpec,
    targets: list[Target],
    options: WaveOptions,
    *,
    dry_run: bool,
    as_json: bool,
    yes: bool,
) -> int:
    profile = session.profile
    plan = _plan(profile, spec, targets, options)
    for line in plan.describe():
        print(printable(line), file=sys.stderr)
    try:
        checked = actions.check_plan(session, plan, requested=dry_run)
    except actions.PlanRefused as exc:
        raise BatchFailed(str(exc)) from None
    if dry_run:
        shown = {"plan": plan.to_json(), "results": to_json(checked)}
        return _print_dry_run([plan], checked, shown if as_json else None)
    confirm("rollout", [f"{ns}/{n}" for ns, n in plan.targets], yes=yes, dry_run=False)
    backend = session.backend
    gate = _metrics_gate(profile, backend, plan.targets) if plan.bake_seconds > 0 else None
    if gate is None:
        print("SLO gates off: no bake, or no metrics for this profile (rollouts are still "
              "watched)", file=sys.stderr)  # fmt: skip
    journal = lifecycle.new_journal(plan, session.audit, "cli")
    print(f"batch {journal.id}: journal {journal.path}", file=sys.stderr, flush=True)
    return _execute(backend, journal, session.audit, gate, as_json=as_json)


def _print_dry_run(
    plans: Sequence[Plan], checked: Sequence[ActionResult], as_json: object | None
) -> int:
    """A plan's dry run: its waves (each cluster's, by cluster) and the server's answer per
    target, or ``as_json`` when given; exit 1 when the server refused any target."""
    if as_json is not None:
        print(json.dumps(as_json, indent=2))
    else:
        for plan in plans:
            where = f"cluster {plan.cluster} " if plan.cluster else ""
            for number, wave in enumerate(plan.waves):
                names = ", ".join(f"{ns}/{n}" for ns, n in wave)
                print(printable(f"{where}wave {number + 1}: {names}"))
        for result in checked:
            mark = "ok" if result.ok else "REFUSED"
            print(printable(f"{result.target}: {mark}: {result.message}"))
    return 1 if any(not r.ok for r in checked) else 0


def _execute(
    backend: Backend,
    journal: Journal,
    context: AuditContext,
    gate: SloSource | None,
    *,
    as_json: bool,
    abort: bool = False,
) -> int:
    printer = _EventPrinter(as_json)
    executor = BatchExecutor(backend, journal, audit_context=context, gate=gate, on_event=printer)
    try:
        with _interrupts(executor, journal.id):
            state = executor.abort_now() if abort else executor.run()
    finally:
        if isinstance(gate, CollectorSource):
            gate.collector.stop()
    if as_json:
        print(json.dumps(_state_json(state, journal), sort_keys=True), flush=True)
    else:
        for line in describe(state):
            print(printable(line), flush=True)
    healthy = state.state is BatchState.DONE and not state.failed
    return 0 if healthy else 1


class _EventPrinter:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def __call__(self, event: BatchEvent) -> None:
        if self.as_json:
            print(json.dumps(to_json(event), sort_keys=True), flush=True)
            return
        if event.kind is EventKind.TARGET and (event.step not in _LOUD_STEPS or not event.target):
            return
        where = f"{event.target}: {event.step.value}: " if event.target and event.step else ""
        # Targets and messages quote the cluster (a refusal, a pod's reason): one printable line.
        print(printable(f"{where}{event.message}"), flush=True)


@contextmanager
def _interrupts(executor: BatchExecutor, batch_id: str) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) halts after the requests in flight; a second Ctrl-C aborts."""
    pressed = 0

    def on_signal(number: int, frame: FrameType | None) -> None:
        nonlocal pressed
        pressed += 1
        if pressed == 1 or number == signal.SIGTERM:
            print(f"\nhalting batch {batch_id} (Ctrl-C again to abort and roll back)",
                  file=sys.stderr, flush=True)  # fmt: skip
            executor.halt()
        else:
            print(f"\naborting batch {batch_id}: rolling back", file=sys.stderr, flush=True)
            executor.abort()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _metrics_gate(
    profile: Profile, backend: Backend, targets: Sequence[Target]
) -> SloSource | None:
    """The profile's metrics collector, scraping only the batch's targets, as the SLO gate;
    None when the profile has no metrics. It watches one full metrics window first: each
    target's baseline is its numbers from before the wave, and a baseline from a couple of
    refreshes rests on a handful of requests (a p99 anywhere between 0.4 and 8 ms here)."""
    try:
        from console.metrics.factory import collector_for
    except ImportError:
        return None
    try:
        collector = collector_for(profile, backend)
        collector.set_wanted(set(targets))
        collector.start()
    except Exception as exc:  # no metrics is no reason to refuse a rollout: say so
        print(printable(f"metrics unavailable ({exc}); SLO gates off"), file=sys.stderr)
        return None
    refreshes = math.ceil(collector.window_s / collector.interval_s) + 1
    print(
        f"measuring the targets' baselines over one metrics window ({collector.window_s:g} s)",
        file=sys.stderr,
    )
    collector.wait_for_refreshes(refreshes, timeout=collector.window_s + 30.0)
    return CollectorSource(collector)


# -- cluster after cluster ---------------------------------------------------------------------
def rollout_by_cluster(
    fleet: ClusterSessions,
    spec: ActionSpec,
    targets: Sequence[WholeTarget],
    options: WaveOptions,
    *,
    dry_run: bool,
    as_json: bool,
    yes: bool,
    order: Sequence[str] | None = None,
) -> int:
    """``--wave-by cluster``: one batch per cluster, in the profile's order of its clusters
    (or ``order``, from ``--waves canary,eu-west,*``),
    each in its own waves with that cluster's gates and journal (which names the cluster and
    holds the plans of the clusters after it). Every cluster's plan is checked (read-only,
    RBAC, the server's dry run) before anything is sent anywhere; a cluster whose batch does not
    end done and healthy stops the sequence there: the clusters before it keep the change (its
    own --on-failure applies within it), those after it are not touched, and
    ``batch resume`` of its batch goes on with them."""
    if fleet.unavailable:
        raise BatchFailed(
            f"not every cluster can be read ({'; '.join(fleet.problems())}); nothing was sent"
        )
    chosen = {t.cluster for t in targets}
    left_out = sorted(chosen - set(order)) if order is not None else []
    if left_out:
        raise BatchFailed(
            f"targets in {', '.join(left_out)}, which --waves does not name: add them, or * "
            "for every other cluster; nothing was sent"
        )
    sequence = list(order) if order is not None else list(fleet.sessions)
    plans = [
        dataclasses.replace(
            _plan(
                session.profile,
                spec,
                [(t.namespace, t.name) for t in targets if t.cluster == cluster],
                options,
            ),
            cluster=cluster,
        )
        for cluster, session in ((c, fleet.session(c)) for c in sequence)
        if cluster in chosen
    ]
    checked: list[ActionResult] = []
    for plan in plans:
        assert plan.cluster is not None
        for line in plan.describe():
            print(printable(line), file=sys.stderr)
        try:
            found = actions.check_plan(fleet.session(plan.cluster), plan, requested=dry_run)
        except actions.PlanRefused as exc:
            raise BatchFailed(f"cluster {plan.cluster}: {exc}") from None
        checked += [dataclasses.replace(r, target=f"{plan.cluster}/{r.target}") for r in found]
    if dry_run:
        shown = {"plans": [p.to_json() for p in plans], "results": to_json(checked)}
        return _print_dry_run(plans, checked, shown if as_json else None)
    every = [f"{p.cluster}/{ns}/{n}" for p in plans for ns, n in p.targets]
    confirm("rollout", every, yes=yes, dry_run=False)
    first = dataclasses.replace(plans[0], then=tuple(plans[1:]))
    return _run_from(fleet, first, as_json=as_json)


def _run_from(
    fleet: ClusterSessions, plan: Plan, *, as_json: bool, before: Sequence[str] = ()
) -> int:
    """Run ``plan`` in its cluster, then each plan after it while every one ends healthy.
    ``before``: the batches of the clusters already done in this sequence; a cluster whose
    batch fails with ``--on-failure rollback-all`` has them rolled back too, last first."""
    done = list(before)
    while True:
        assert plan.cluster is not None
        session = fleet.session(plan.cluster)
        gate = (
            _metrics_gate(session.profile, session.backend, plan.targets)
            if plan.bake_seconds > 0
            else None
        )
        if gate is None:
            print(f"cluster {plan.cluster}: SLO gates off: no bake, or no metrics there "
                  "(rollouts are still watched)", file=sys.stderr)  # fmt: skip
        journal = lifecycle.new_journal(plan, session.audit, "cli", done)
        print(f"cluster {plan.cluster}: batch {journal.id}: journal {journal.path}",
              file=sys.stderr, flush=True)  # fmt: skip
        code = _execute(session.backend, journal, session.audit, gate, as_json=as_json)
        if code != 0:
            _undo_before_if_all(fleet, journal, done, as_json=as_json)
            return _stopped(plan, journal.id, code)
        done.append(journal.id)
        if not plan.then:
            return 0
        plan = dataclasses.replace(plan.then[0], then=plan.then[1:])


def _undo_before_if_all(
    fleet: ClusterSessions, journal: Journal, before: Sequence[str], *, as_json: bool
) -> None:
    """After a cluster's batch ended unhealthy: with ``rollback-all`` and targets that failed
    (not a cluster that went away: that one halts, to be resumed), the clusters done before it
    are rolled back too."""
    state = journal.replay()
    if before and state.plan.on_failure == "rollback-all" and state.failed:
        print(f"cluster {state.plan.cluster} failed with --on-failure rollback-all: rolling "
              "back the clusters done before it", file=sys.stderr, flush=True)  # fmt: skip
        _abort_batches(fleet, before, as_json=as_json)


def _abort_batches(fleet: ClusterSessions, batch_ids: Sequence[str], *, as_json: bool) -> int:
    """Roll back finished batches of a sequence, the last first, each in its own cluster and
    by its rules (read-only, RBAC): 0 when every one was rolled back."""
    worst = 0
    for batch_id in reversed(batch_ids):
        try:
            worst = max(worst, _abort_finished(fleet, batch_id, as_json=as_json))
        except Exception as exc:  # said; the older clusters are still rolled back
            print(printable(f"batch {batch_id}: not rolled back: {exc}"), file=sys.stderr)
            worst = 1
    return worst


def _abort_finished(fleet: ClusterSessions, batch_id: str, *, as_json: bool) -> int:
    """Roll back one finished batch of a sequence in its cluster, after the lifecycle's checks
    (profile, namespaces watched, read-only, RBAC) but for the one refusing a finished batch."""
    journal = _open(batch_id)
    state = journal.replay()
    if state.state is BatchState.ABORTED:
        return 0
    cluster = state.plan.cluster
    session = fleet.only("batch abort") if cluster is None else fleet.session(cluster)
    if state.state is BatchState.DONE:  # check as a halted one: "done" only forbids a user's
        state = dataclasses.replace(state, state=BatchState.HALTED)
    try:
        lifecycle.check(
            "abort", journal, state, session.guard, session.backend.namespaces, session.cluster
        )
    except (lifecycle.BatchRefused, guard.Refusal) as exc:
        print(printable(f"cluster {cluster}: batch {batch_id}: {exc}"), file=sys.stderr)
        return 1
    print(f"cluster {cluster}: batch {batch_id}: rolling back", file=sys.stderr, flush=True)
    code = _execute(session.backend, journal, session.audit, None, as_json=as_json, abort=True)
    return 0 if journal.replay().state is BatchState.ABORTED else code or 1


def _stopped(plan: Plan, batch_id: str, code: int) -> int:
    if plan.then:
        rest = ", ".join(str(p.cluster) for p in plan.then)
        print(printable(
            f"cluster {plan.cluster} did not end healthy: not started in {rest} (nothing sent "
            f"there); `fleetdeck batch resume {batch_id}` finishes {plan.cluster} and goes on"
        ), file=sys.stderr, flush=True)  # fmt: skip
    return code


# -- batch list|status|resume|halt|abort ------------------------------------------------------
def show(args: argparse.Namespace) -> int:
    """``batch list``, ``status`` and ``halt``: from the journals alone."""
    if args.batch_command == "list":
        return _list(args)
    journal = _open(args.id)
    if args.batch_command == "halt":
        holder = lifecycle.ask_holder(journal, "halt")
        if holder is None:
            raise BatchFailed(f"batch {journal.id} is not running; nothing to halt")
        print(f"asked process {holder} to halt batch {journal.id}")
        return 0
    state = journal.replay()
    output = output_of(args)
    if output.structured:
        dump(_state_json(state, journal), output)
    else:
        for line in describe(state, journal.holder()):
            print(printable(line))
    return 0


def resume_or_abort(fleet: ClusterSessions, verb: str, batch_id: str, *, as_json: bool) -> int:
    """``batch resume`` and ``abort``: they change the fleet (the lifecycle's checks first).
    A batch of one cluster of several (``--wave-by cluster``) is resumed in its cluster, and
    once it ends healthy the clusters after it follow."""
    if verb not in ("resume", "abort"):
        raise BatchFailed(f"batch {verb}: expected resume or abort")
    chosen: lifecycle.Verb = "abort" if verb == "abort" else "resume"
    journal = _open(batch_id)
    state = journal.replay()
    cluster = state.plan.cluster
    session = fleet.only(f"batch {verb}") if cluster is None else fleet.session(cluster)
    backend = session.backend
    try:
        lifecycle.check(chosen, journal, state, session.guard, backend.namespaces, session.cluster)
    except lifecycle.BatchRefused as exc:
        if journal.holder() is None and state.state in (BatchState.DONE, BatchState.ABORTED):
            for line in describe(state):
                print(printable(line))
        raise BatchFailed(str(exc)) from None
    if chosen == "abort" and (holder := lifecycle.ask_holder(journal, "abort")) is not None:
        print(f"asked process {holder} to abort batch {journal.id}; waiting", file=sys.stderr)
        final = lifecycle.wait_for_holder(journal)
        for line in describe(final, journal.holder()):
            print(printable(line))
        code = 0 if final.state is BatchState.ABORTED else 1
        # The whole sequence: the clusters done before it too.
        return max(code, _abort_batches(fleet, lifecycle.batches_before(state), as_json=as_json))
    try:
        resume = chosen == "resume" and state.plan.bake_seconds > 0
        gate = _metrics_gate(session.profile, backend, state.plan.targets) if resume else None
        code = _execute(
            backend, journal, session.audit, gate, as_json=as_json, abort=chosen == "abort"
        )
        plan = state.plan
        before = lifecycle.batches_before(state)
        if chosen == "abort":  # the whole sequence: the clusters done before it too
            return max(code, _abort_batches(fleet, before, as_json=as_json))
        if code != 0:
            _undo_before_if_all(fleet, journal, before, as_json=as_json)
            return _stopped(plan, journal.id, code)
        if not plan.then:
            return code
        rest = dataclasses.replace(plan.then[0], then=plan.then[1:])
        return _run_from(fleet, rest, as_json=as_json, before=[*before, journal.id])
    except JournalError as exc:
        raise BatchFailed(str(exc)) from None


def _open(batch_id: str) -> Journal:
    try:
        return lifecycle.open_journal(batch_id)
    except lifecycle.BatchRefused as exc:
        raise BatchFailed(str(exc)) from None


def _list(args: argparse.Namespace) -> int:
    rows = []
    for journal in list_journals():
        try:
            state = journal.replay()
        except (JournalError, OSError, ValueError, KeyError):
            continue
        rows.append((journal, state))
    output = output_of(args)
    if output.structured:
        dump([_state_json(s, j) for j, s in rows], output)
        return 0
    print_table(
        ["ID", "STATE", "ACTION", "TARGETS", "WAVES", "FAILED", "USER", "PROFILE"],
        [
            [
                journal.id,
                state.state.value + (" (no process)" if _orphaned(journal, state) else ""),
                state.plan.spec.describe(),
                len(state.plan.targets),
                f"{len(state.waves_passed)}/{len(state.plan.waves)}",
                len(state.failed),
                state.meta.get("user", "?"),
                state.meta.get("profile", "?"),
            ]
            for journal, state in rows
        ],
        with_headers=output.headers,
    )
    return 0


def _orphaned(journal: Journal, state: Replay) -> bool:
    return state.state is BatchState.RUNNING and journal.holder() is None


def _state_json(state: Replay, journal: Journal) -> dict[str, object]:
    return {
        "id": state.id,
        "state": state.state.value,
        "reason": state.reason,
        "running": journal.holder() is not None,
        "meta": state.meta,
        "plan": state.plan.to_json(),
        "waves_passed": sorted(n + 1 for n in state.waves_passed),
        "failed": sorted(f"{ns}/{n}" for ns, n in state.failed),
        "targets": {
            f"{ns}/{n}": {"step": item.step.value, "reason": item.reason, "message": item.message}
            for (ns, n), item in state.targets.items()
        },
    }
