"""The CLI's batch commands: ``rollout`` in waves and ``batch list|status|resume|halt|abort``.

``console.cli`` adds the flags (:func:`add_wave_flags`, :func:`add_batch_parser`) and
``console.cli.commands`` routes here; everything printed is for the operator, one line per event
that matters (failures, undo, waves), not one per target.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from console import audit
from console.batch import preflight
from console.batch.executor import BatchEvent, BatchExecutor, EventKind, dry_run
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
from console.batch.plan import ON_FAILURE, make_plan, settings_from, thresholds_from
from console.batch.runner import ActionSpec, AuditContext, Target
from console.cli.printing import print_table
from console.core import guard
from console.profile import Profile
from console.views.format import printable, to_json

WAVE_FLAGS = ("waves", "max_parallel", "halt_after", "bake", "slo_p99_ratio", "slo_error_percent",
              "on_failure")  # fmt: skip
ABORT_WAIT_SECONDS = 300.0
_LOUD_STEPS = frozenset({Step.FAILED, Step.ROLLED_BACK, Step.PAUSED, Step.UNDO_FAILED})


class BatchFailed(Exception):
    """Raised for a refusal (exit 1); the message says why and what to do."""


def add_wave_flags(parser: argparse.ArgumentParser) -> None:
    """The plan flags of ``fleetdeck rollout``; any of them makes the rollout a batch."""
    group = parser.add_argument_group("waves (any of these runs the rollout as a batch)")
    group.add_argument("--waves", help="cumulative wave sizes, e.g. 1,10%%,50%%,100%%")
    group.add_argument("--max-parallel", type=int, help="requests in flight at once")
    group.add_argument("--halt-after", help="failed targets that halt the batch: 3 or 5%%")
    group.add_argument("--bake", type=float, metavar="SECONDS", help="watch each wave this long")
    group.add_argument("--slo-p99-ratio", type=float, help="p99 may grow to R × its baseline")
    group.add_argument(
        "--slo-error-percent", type=float, help="errors may rise by this many points"
    )
    group.add_argument("--on-failure", choices=ON_FAILURE)
    group.add_argument(
        "--stuck-seconds",
        type=float,
        default=60.0,
        help="fail a rollout whose new pods stay stuck this long (CrashLoopBackOff, ...)",
    )


def add_batch_parser(sub: Any) -> None:
    batch = sub.add_parser("batch", help="batches: list, status, resume, halt, abort")
    verbs = batch.add_subparsers(dest="batch_command", metavar="VERB", required=True)
    listed = verbs.add_parser("list", help="every batch, newest last")
    listed.add_argument("--json", action="store_true")
    for verb, text in (
        ("status", "where a batch stands and why"),
        ("resume", "continue a halted or killed batch from its journal"),
        ("halt", "ask the running batch to stop after the requests in flight"),
        ("abort", "stop a batch and roll back everything it changed"),
    ):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("id", metavar="ID")
        parser.add_argument("--json", action="store_true")


def wants_waves(args: argparse.Namespace) -> bool:
    return any(getattr(args, flag, None) is not None for flag in WAVE_FLAGS)


def reads_only(args: argparse.Namespace) -> bool:
    """``batch list``/``status``/``halt`` need no cluster connection."""
    return args.command == "batch" and args.batch_command in ("list", "status", "halt")


# -- rollout in waves -------------------------------------------------------------------------
def rollout_in_waves(
    backend: Any,
    profile: Profile,
    args: argparse.Namespace,
    targets: list[Target],
    confirm: Any,
) -> int:
    settings = settings_from(
        profile,
        waves=args.waves,
        max_parallel=args.max_parallel,
        halt_after=args.halt_after,
        bake=args.bake,
        on_failure=args.on_failure,
    )
    thresholds = thresholds_from(
        profile, p99_ratio=args.slo_p99_ratio, error_percent=args.slo_error_percent
    )
    spec = ActionSpec("rollout", version=args.version, verify=not args.no_verify)
    plan = make_plan(spec, targets, settings, slo=thresholds, stuck_seconds=args.stuck_seconds)
    context = _audit_context(profile, args)
    read_only = bool(args.readonly or profile.read_only)
    problems = preflight.problems(
        backend, plan, read_only=read_only, profile=profile.name, user=args.user
    )
    if problems:
        raise BatchFailed("; ".join(problems))
    for line in plan.describe():
        print(printable(line), file=sys.stderr)
    checked = dry_run(backend, spec, plan.targets, plan.max_parallel)
    refused = [r for r in checked if not r.ok]
    _audit_dry_run(context, spec, checked, requested=bool(args.dry_run))
    if args.dry_run:
        if args.json:
            print(json.dumps({"plan": plan.to_json(), "results": to_json(checked)}, indent=2))
        else:
            for number, wave in enumerate(plan.waves):
                names = ", ".join(f"{ns}/{n}" for ns, n in wave)
                print(printable(f"wave {number + 1}: {names}"))
            for result in checked:
                mark = "ok" if result.ok else "REFUSED"
                print(printable(f"{result.target}: {mark}: {result.message}"))
        return 1 if refused else 0
    if refused:
        shown = "; ".join(f"{r.target}: {r.message}" for r in refused[:5])
        more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
        raise BatchFailed(
            f"the server refused {len(refused)} of {len(checked)} targets in the dry run "
            f"({shown}{more}); nothing was sent"
        )
    confirm("rollout", [f"{ns}/{n}" for ns, n in plan.targets], args)
    gate = _metrics_gate(profile, backend, plan.targets) if plan.bake_seconds > 0 else None
    if gate is None:
        print("SLO gates off: no bake, or no metrics for this profile (rollouts are still "
              "watched)", file=sys.stderr)  # fmt: skip
    meta = {
        "profile": profile.name,
        "context": context.context,
        "user": context.user,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "namespaces": sorted({t[0] for t in plan.targets}),
    }
    journal = Journal.create(plan, meta)
    print(f"batch {journal.id}: journal {journal.path}", file=sys.stderr, flush=True)
    return _execute(backend, journal, context, gate, args)


def _execute(
    backend: Any,
    journal: Journal,
    context: AuditContext,
    gate: SloSource | None,
    args: argparse.Namespace,
    *,
    abort: bool = False,
) -> int:
    printer = _EventPrinter(bool(args.json))
    executor = BatchExecutor(backend, journal, audit_context=context, gate=gate, on_event=printer)
    try:
        with _interrupts(executor, journal.id):
            state = executor.abort_now() if abort else executor.run()
    finally:
        if isinstance(gate, CollectorSource):
            gate.collector.stop()
    if args.json:
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


def _metrics_gate(profile: Profile, backend: Any, targets: Sequence[Target]) -> SloSource | None:
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


def _audit_context(profile: Profile, args: argparse.Namespace) -> AuditContext:
    context = args.context or (profile.kubernetes.context if profile.kubernetes else None)
    return AuditContext(profile.name, context, args.user)


def _audit_dry_run(
    context: AuditContext, spec: ActionSpec, results: list[Any], *, requested: bool
) -> None:
    try:
        audit.record(
            spec.action,
            [r.target for r in results],
            profile=context.profile,
            context=context.context,
            results=[audit.TargetResult(r.target, r.ok, r.message) for r in results],
            parameters={**spec.parameters(), "batch_plan": True, "requested": requested},
            dry_run=True,
            user=context.user,
        )
    except OSError as exc:
        print(f"fleetdeck: warning: could not write the audit log: {exc}", file=sys.stderr)


# -- batch list|status|resume|halt|abort ------------------------------------------------------
def show(profile: Profile, args: argparse.Namespace) -> int:
    """``batch list``, ``status`` and ``halt``: from the journals alone."""
    if args.batch_command == "list":
        return _list(args)
    journal = _open(args.id)
    if args.batch_command == "halt":
        holder = journal.holder()
        if holder is None:
            raise BatchFailed(f"batch {journal.id} is not running; nothing to halt")
        journal.request("halt")
        print(f"asked process {holder} to halt batch {journal.id}")
        return 0
    state = journal.replay()
    if args.json:
        print(json.dumps(_state_json(state, journal), indent=2, sort_keys=True))
    else:
        for line in describe(state, journal.holder()):
            print(printable(line))
    return 0


def act(backend: Any, profile: Profile, args: argparse.Namespace) -> int:
    """``batch resume`` and ``abort``: they change the fleet."""
    journal = _open(args.id)
    state = journal.replay()
    read_only = bool(args.readonly or profile.read_only)
    guard.check_read_only(read_only=read_only, profile=profile.name)
    recorded = state.meta.get("profile")
    if recorded and recorded != profile.name:
        raise BatchFailed(
            f"batch {journal.id} was started with profile {recorded!r}; "
            f"use --profile {recorded} to {args.batch_command} it"
        )
    namespaces = sorted({t[0] for t in state.plan.targets})
    watched = set(getattr(backend, "namespaces", ()) or ())
    unwatched = [ns for ns in namespaces if watched and ns not in watched]
    if unwatched:
        raise BatchFailed(
            f"batch {journal.id} has targets in {', '.join(unwatched)}, which this profile "
            "does not watch; add -A"
        )
    # A resume goes on with the plan's action; an abort rolls back what the batch changed.
    action: guard.Mutation = "rollback" if args.batch_command == "abort" else state.plan.spec.action
    guard.Guard(backend, read_only, profile.name, args.user).check(action, namespaces)
    context = _audit_context(profile, args)
    holder = journal.holder()
    if args.batch_command == "abort" and holder is not None:
        journal.request("abort")
        print(f"asked process {holder} to abort batch {journal.id}; waiting", file=sys.stderr)
        deadline = time.monotonic() + ABORT_WAIT_SECONDS
        while journal.holder() is not None and time.monotonic() < deadline:
            time.sleep(0.5)
        final = journal.replay()
        for line in describe(final, journal.holder()):
            print(printable(line))
        return 0 if final.state is BatchState.ABORTED else 1
    if state.state in (BatchState.DONE, BatchState.ABORTED):
        for line in describe(state):
            print(printable(line))
        raise BatchFailed(
            f"batch {journal.id} is {state.state.value}; nothing to {args.batch_command}"
        )
    try:
        resume = args.batch_command == "resume" and state.plan.bake_seconds > 0
        gate = _metrics_gate(profile, backend, state.plan.targets) if resume else None
        return _execute(backend, journal, context, gate, args, abort=args.batch_command == "abort")
    except JournalError as exc:
        raise BatchFailed(str(exc)) from None


def _open(batch_id: str) -> Journal:
    try:
        return Journal.open(batch_id)
    except JournalError as exc:
        raise BatchFailed(str(exc)) from None


def _list(args: argparse.Namespace) -> int:
    rows = []
    for journal in list_journals():
        try:
            state = journal.replay()
        except (JournalError, OSError, ValueError, KeyError):
            continue
        rows.append((journal, state))
    if args.json:
        print(json.dumps([_state_json(s, j) for j, s in rows], indent=2, sort_keys=True))
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
    )
    return 0


def _orphaned(journal: Journal, state: Replay) -> bool:
    return state.state is BatchState.RUNNING and journal.holder() is None


def _state_json(state: Replay, journal: Journal) -> dict[str, Any]:
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
