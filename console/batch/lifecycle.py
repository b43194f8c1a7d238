"""A batch's life after its plan: the runs a deck keeps, resume and abort, and their checks,
the same for the CLI and the deck.

Who may resume or abort a batch (:func:`check`): not a read-only profile; only the profile
that started it (its journal names it); only when this session watches every namespace of
its targets; not a finished batch; and RBAC for what it sends (a resume goes on with the
plan's action, an abort rolls back what the batch changed). An abort of a batch another
process runs is asked of that process (:func:`ask_holder`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from console.audit import AuditContext
from console.backends.base import Backend
from console.batch.executor import BatchEvent, BatchExecutor, EventKind
from console.batch.gates import BaselineCollector, CollectorSource, SloSource
from console.batch.journal import BatchState, Journal, JournalError, Replay
from console.batch.plan import Plan
from console.core import guard

Verb = Literal["resume", "abort"]
ABORT_WAIT_SECONDS = 300.0
_FINISHED = (BatchState.DONE, BatchState.ABORTED)


class BatchRefused(Exception):
    """A resume or abort that must not go ahead; the message says why and what to do."""


def open_journal(batch_id: str) -> Journal:
    try:
        return Journal.open(batch_id)
    except JournalError as exc:
        raise BatchRefused(str(exc)) from None


def batch_meta(audit: AuditContext, plan: Plan, origin: str) -> dict[str, Any]:
    """What a journal records about who started the batch (``origin``: "cli" or "deck")."""
    return {
        "profile": audit.profile,
        "context": audit.context,
        "user": audit.user,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "namespaces": sorted({namespace for namespace, _ in plan.targets}),
        "from": origin,
    }


def new_journal(
    plan: Plan, audit: AuditContext, origin: str, before: Sequence[str] = ()
) -> Journal:
    """The journal of a plan about to start (after :func:`console.core.actions.check_plan`).
    ``before``: in a rollout cluster by cluster, the batches of the clusters done before it
    (an abort of this batch, or its failure with ``rollback-all``, undoes them too)."""
    meta = batch_meta(audit, plan, origin)
    if before:
        meta["before"] = list(before)
    return Journal.create(plan, meta)


def batches_before(state: Replay) -> list[str]:
    """The batches of the clusters done before this one in its sequence, first first."""
    before = state.meta.get("before", [])
    return [str(b) for b in before] if isinstance(before, list) else []


def action_of(verb: Verb, plan: Plan) -> guard.Mutation:
    """What a resume or an abort sends: the plan's action, or rollbacks."""
    return "rollback" if verb == "abort" else plan.spec.action


def check(
    verb: Verb,
    journal: Journal,
    state: Replay,
    checks: guard.Guard,
    watched: Sequence[str],
    cluster: str | None = None,
) -> None:
    """Raise why ``verb`` must not go ahead (:class:`BatchRefused`, or the guard's
    :class:`~console.core.guard.Refusal`); return when it may. ``watched``: the namespaces
    the session reads (() for all); ``cluster``: the profile's cluster the session is on.
    Blocking (RBAC asks the API server): call from a worker."""
    if checks.read_only:
        raise guard.read_only_refusal(checks.profile)
    recorded = state.meta.get("profile")
    if recorded and recorded != checks.profile:
        raise BatchRefused(
            f"batch {journal.id} was started with profile {recorded!r}; "
            f"use --profile {recorded} to {verb} it"
        )
    if state.plan.cluster is not None and cluster is not None and state.plan.cluster != cluster:
        # The same namespace and name in another cluster is another deployment.
        raise BatchRefused(
            f"batch {journal.id} is in cluster {state.plan.cluster}; "
            f"use --cluster {state.plan.cluster} to {verb} it"
        )
    namespaces = sorted({namespace for namespace, _ in state.plan.targets})
    unwatched = [ns for ns in namespaces if watched and ns not in watched]
    if unwatched:
        raise BatchRefused(
            f"batch {journal.id} has targets in {', '.join(unwatched)}, which this profile "
            "does not watch; add -A"
        )
    holder = journal.holder()
    if verb == "resume" and holder is not None:
        raise BatchRefused(f"batch {journal.id} is running (process {holder}); nothing to resume")
    if holder is None and state.state in _FINISHED:
        raise BatchRefused(f"batch {journal.id} is {state.state.value}; nothing to {verb}")
    checks.check(action_of(verb, state.plan), namespaces)


def ask_holder(journal: Journal, verb: Literal["halt", "abort"]) -> int | None:
    """Ask the process that runs the batch to halt or abort it; its pid, or None when no
    process runs it."""
    holder = journal.holder()
    if holder is not None:
        journal.request(verb)
    return holder


def wait_for_holder(journal: Journal, timeout: float = ABORT_WAIT_SECONDS) -> Replay:
    """Wait (bounded) until no process runs the batch; what its journal says then."""
    deadline = time.monotonic() + timeout
    while journal.holder() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    return journal.replay()


def gate_for(metrics: object | None) -> SloSource | None:
    """A metrics collector as the SLO gate, when it keeps baselines."""
    return CollectorSource(metrics) if isinstance(metrics, BaselineCollector) else None


# -- the runs a deck keeps ----------------------------------------------------------------------
class BatchHost(Protocol):
    """What a run needs of the session that runs it (the deck's context is one)."""

    @property
    def backend(self) -> Backend: ...
    @property
    def audit(self) -> AuditContext: ...
    @property
    def metrics(self) -> object | None: ...


class Workers(Protocol):
    """Where a run's thread comes from (Textual's ``App.run_worker``)."""

    def run_worker(
        self,
        work: Callable[[], None],
        name: str | None = "",
        group: str = "default",
        description: str = "",
        exit_on_error: bool = True,
        start: bool = True,
        exclusive: bool = False,
        thread: bool = False,
    ) -> object: ...


class BatchRun:
    """One batch this deck runs (or may run): its journal, its executor and its events."""

    def __init__(self, host: BatchHost, journal: Journal) -> None:
        self.host = host
        self.journal = journal
        self.events: list[BatchEvent] = []
        self.executor: BatchExecutor | None = None
        self.running = False
        self.final: Replay | None = None  # set when a run ends
        self.error = ""
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.journal.id

    def events_since(self, seen: int) -> list[BatchEvent]:
        with self._lock:
            return self.events[seen:]

    def _record(self, event: BatchEvent) -> None:
        with self._lock:
            self.events.append(event)

    def start(self, workers: Workers, *, abort: bool = False) -> None:
        """Run (or resume, or with ``abort`` roll back) the batch in a thread worker."""
        if self.running:
            return
        self.error = ""
        try:
            executor = BatchExecutor(
                self.host.backend,
                self.journal,
                audit_context=self.host.audit,
                gate=gate_for(self.host.metrics),
                on_event=self._record,
            )
        except (JournalError, OSError, ValueError, KeyError) as exc:
            self._failed(exc)
            return
        self.executor = executor
        self.running = True
        self.final = None

        def run() -> None:
            final: Replay | None
            try:
                final = executor.abort_now() if abort else executor.run()
            except Exception as exc:  # the journal keeps what happened; the screen says why
                final = self._failed(exc)
            self.final = final
            self.running = False

        workers.run_worker(run, name=f"batch {self.id}", group="batches", thread=True,
                           exit_on_error=False)  # fmt: skip

    def _failed(self, exc: Exception) -> Replay | None:
        """Say why the batch could not run (as a log line) and what its journal says now."""
        self.error = f"batch {self.id} could not run: {exc}"
        self._record(BatchEvent(EventKind.TARGET, self.error))
        try:
            return self.journal.replay()
        except (JournalError, OSError, ValueError, KeyError):
            return None

    def baselines(self) -> dict[tuple[str, str], tuple[float | None, float | None]]:
        """The baselines the running executor took (they reach the journal, not the events)."""
        executor = self.executor
        if executor is None:
            return {}
        return dict(executor.state.baselines)  # a copy: the worker adds to it

    def halt(self) -> str:
        """Ask the batch to stop after the requests in flight; what was done, for the operator."""
        if self.running and self.executor is not None:
            self.executor.halt()
            return f"halting batch {self.id}: the requests in flight finish, no more are sent"
        holder = ask_holder(self.journal, "halt")
        if holder is not None:
            return f"asked process {holder} to halt batch {self.id}"
        return f"batch {self.id} is not running; nothing to halt"

    def abort(self, workers: Workers) -> str:
        """Abort it: here, through the process that runs it, or by rolling back now (after
        :func:`check`)."""
        if self.running and self.executor is not None:
            self.executor.abort()
            return f"aborting batch {self.id}: rolling back what it changed"
        holder = ask_holder(self.journal, "abort")
        if holder is not None:
            return f"asked process {holder} to abort batch {self.id}"
        self.start(workers, abort=True)
        return self.error or f"aborting batch {self.id}: rolling back what it changed"


class BatchRuns:
    """The batches of this deck, by ID: the app keeps them while screens come and go."""

    def __init__(self) -> None:
        self.runs: dict[str, BatchRun] = {}

    def get(self, host: BatchHost, journal: Journal) -> BatchRun:
        if journal.id not in self.runs:
            self.runs[journal.id] = BatchRun(host, journal)
        return self.runs[journal.id]

    def halt_all(self) -> None:
        """The deck is closing: running batches halt (resumable) instead of dying mid-step."""
        for run in self.runs.values():
            if run.running and run.executor is not None:
                run.executor.halt()


def runs_of(app: object) -> BatchRuns:
    """The app's batches (the deck makes them at start; any other host gets them here)."""
    runs = getattr(app, "batch_runs", None)
    if not isinstance(runs, BatchRuns):
        runs = BatchRuns()
        app.batch_runs = runs  # type: ignore[attr-defined]
    return runs
