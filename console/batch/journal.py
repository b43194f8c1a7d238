"""The batch journal: the plan and every step on disk, fsync'd, before the step is sent.

One file per batch, ``${XDG_STATE_HOME:-~/.local/state}/fleetdeck/batches/<id>.jsonl``: one JSON
object per line, appended with one ``write`` and an ``fsync`` (a crash can only cut the last line,
which replay skips). A ``send`` record is written before its requests go out and a ``result``
record after each answer, so a step with a ``send`` but no ``result`` is one that may or may not
have reached the cluster: resume sends it again (each step is safe to repeat). The process that
runs a batch holds ``<id>.lock`` (flock, released by the kernel when it dies); another process
asks it to halt or abort through ``<id>.halt`` / ``<id>.abort`` files.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console import paths
from console.batch.plan import Plan
from console.batch.runner import Target

ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz-")


class JournalError(Exception):
    """A batch that cannot be found, read or taken over; the message says what to do."""


class BatchState(enum.StrEnum):
    RUNNING = "running"  # or killed while running: the lock says which
    HALTED = "halted"  # stopped by an operator or by the failure threshold; resumable
    ABORTED = "aborted"  # everything it changed was rolled back (or the attempt recorded)
    DONE = "done"


class Step(enum.StrEnum):
    PENDING = "pending"  # not sent yet
    SENT = "sent"  # the change was sent; no answer recorded (killed in between)
    APPLIED = "applied"  # the server took the change; its rollout is being watched
    HEALTHY = "healthy"  # rolled out and passed its wave's bake
    FAILED = "failed"  # failed (reason recorded), not yet undone
    UNDOING = "undoing"  # a rollback or pause was sent; no answer recorded
    ROLLED_BACK = "rolled-back"
    PAUSED = "paused"
    UNDO_FAILED = "undo-failed"  # the rollback itself failed: needs a human


@dataclass
class TargetRecord:
    step: Step = Step.PENDING
    reason: str = ""  # why it failed
    message: str = ""  # the last answer from the cluster
    revision: int | None = None  # the Deployment's revision before the batch changed it
    undo: str = ""  # the undo last sent (rollback | pause)


@dataclass
class Replay:
    """A batch as its journal tells it."""

    id: str
    plan: Plan
    meta: dict[str, Any]
    state: BatchState = BatchState.RUNNING
    reason: str = ""
    wave: int = -1  # the wave being worked on (-1: none started)
    waves_passed: set[int] = field(default_factory=set)
    targets: dict[Target, TargetRecord] = field(default_factory=dict)
    baselines: dict[Target, tuple[float | None, float | None]] = field(default_factory=dict)
    failed: set[Target] = field(default_factory=set)  # every target that ever failed
    failures_acknowledged: int = 0  # failures when the batch last halted (resume starts anew)

    @property
    def halted_by_failures(self) -> bool:
        return len(self.failed) >= self.plan.halt_threshold

    def counts(self) -> dict[Step, int]:
        counted = dict.fromkeys(Step, 0)
        for record in self.targets.values():
            counted[record.step] += 1
        return counted

    def in_steps(self, *steps: Step) -> list[Target]:
        return [t for t in self.plan.targets if self.targets[t].step in steps]


def batches_dir() -> Path:
    return paths.state_home() / "batches"


def new_batch_id(now: datetime | None = None) -> str:
    """Sortable by time, unique enough to type: ``20261126-195512-k3f9``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def _target(value: Sequence[str]) -> Target:
    return (str(value[0]), str(value[1]))


class Journal:
    def __init__(self, batch_id: str, folder: Path | None = None) -> None:
        if not batch_id or not set(batch_id) <= ID_CHARS:
            raise JournalError(f"{batch_id!r} is not a batch ID (see `fleetdeck batch list`)")
        self.id = batch_id
        self.folder = folder or batches_dir()
        self.path = self.folder / f"{batch_id}.jsonl"
        self._lock_path = self.folder / f"{batch_id}.lock"
        self._write_lock = threading.Lock()
        self._lock_fd: int | None = None

    # -- creating and opening -------------------------------------------------------------------
    @classmethod
    def create(cls, plan: Plan, meta: Mapping[str, Any], folder: Path | None = None) -> Journal:
        """A new batch's journal holding its plan (on disk before anything is sent)."""
        journal = cls(new_batch_id(), folder)
        journal.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if journal.path.exists():  # two batches in the same second with the same 16 bits
            return cls.create(plan, meta, folder)
        journal.append("plan", plan=plan.to_json(), meta=dict(meta))
        # The new file's name must survive a crash too.
        fd = os.open(journal.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return journal

    @classmethod
    def open(cls, batch_id: str, folder: Path | None = None) -> Journal:
        journal = cls(batch_id, folder)
        if not journal.path.is_file():
            raise JournalError(
                f"no batch {batch_id!r} in {journal.folder} (see `fleetdeck batch list`)"
            )
        return journal

    # -- writing ------------------------------------------------------------------------------
    def append(self, kind: str, **fields: Any) -> None:
        """One record, durable when this returns."""
        record = {"kind": kind, "time": datetime.now(UTC).isoformat(timespec="milliseconds")}
        record.update(fields)
        data = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        with self._write_lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"journal: wrote {written} of {len(data)} bytes to {self.path}")
                os.fsync(fd)
            finally:
                os.close(fd)

    def send(self, purpose: str, action: str, targets: Sequence[Target], **extra: Any) -> None:
        """Before ``action`` goes to ``targets``: purpose ``apply``, ``rollback`` or ``pause``."""
        self.append(
            "send", purpose=purpose, action=action, targets=[list(t) for t in targets], **extra
        )

    # -- reading ------------------------------------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        records = []
        with self.path.open("rb") as handle:
            for raw in handle:
                try:
                    record = json.loads(raw)
                except ValueError:  # a line cut short by a crash
                    continue
                if isinstance(record, dict) and "kind" in record:
                    records.append(record)
        return records

    def replay(self) -> Replay:
        records = self.records()
        if not records or records[0]["kind"] != "plan":
            raise JournalError(f"{self.path}: no plan at its start; not a batch journal")
        return replay(self.id, records)

    # -- who runs it, and requests to it --------------------------------------------------------
    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """Hold the batch for this process; refused while another process holds it."""
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise JournalError(
                f"batch {self.id} is being run by process {holder}; "
                f"halt it with `fleetdeck batch halt {self.id}` or wait"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._lock_fd = fd
        try:
            yield
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the lock

    def holder(self) -> int | None:
        """The pid of the process running this batch now, or None."""
        if self._lock_fd is not None:
            return os.getpid()
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        finally:
            os.close(fd)  # also drops the lock we may just have taken
        return None

    def request(self, what: str) -> None:
        """Ask the running process to ``halt`` or ``abort`` (it checks between steps)."""
        if what not in ("halt", "abort"):
            raise ValueError(what)
        (self.folder / f"{self.id}.{what}").touch()

    def requested(self) -> str | None:
        for what in ("abort", "halt"):
            if (self.folder / f"{self.id}.{what}").exists():
                return what
        return None

    def clear_requests(self) -> None:
        for what in ("abort", "halt"):
            (self.folder / f"{self.id}.{what}").unlink(missing_ok=True)


def list_journals(folder: Path | None = None) -> list[Journal]:
    """Every batch in the folder, oldest first."""
    folder = folder or batches_dir()
    if not folder.is_dir():
        return []
    return [Journal(p.stem, folder) for p in sorted(folder.glob("*.jsonl"))]


def replay(batch_id: str, records: Sequence[Mapping[str, Any]]) -> Replay:
    """Fold a journal's records into where the batch stands."""
    plan = Plan.from_json(records[0]["plan"])
    state = Replay(batch_id, plan, dict(records[0].get("meta") or {}))
    state.targets = {t: TargetRecord() for t in plan.targets}
    for record in records[1:]:
        kind = record["kind"]
        if kind == "state":
            state.state = BatchState(record["state"])
            state.reason = str(record.get("reason", ""))
            if state.state is BatchState.HALTED:
                state.failures_acknowledged = len(state.failed)
        elif kind == "wave":
            state.wave = int(record["wave"])
            if record.get("event") == "passed":
                state.waves_passed.add(state.wave)
        elif kind == "baselines":
            for key, value in record["values"]:
                state.baselines[_target(key)] = (value[0], value[1])
        elif kind == "send":
            undo = record["purpose"] != "apply"
            revisions = record.get("revisions") or {}
            for key in record["targets"]:
                target = _target(key)
                item = state.targets.get(target)
                if item is None:
                    continue
                item.step = Step.UNDOING if undo else Step.SENT
                item.undo = record["purpose"] if undo else ""
                revision = revisions.get(f"{target[0]}/{target[1]}")
                if not undo and revision is not None and item.revision is None:
                    item.revision = int(revision)
        elif kind == "result":
            target = _target(record["target"])
            item = state.targets.get(target)
            if item is None:
                continue
            item.message = str(record.get("message", ""))
            purpose, ok = record["purpose"], bool(record["ok"])
            if purpose == "apply":
                if ok:
                    item.step = Step.APPLIED if plan.rolling else Step.HEALTHY
                else:
                    item.step, item.reason = Step.FAILED, item.message
                    state.failed.add(target)
            elif purpose == "rollback":
                item.step = Step.ROLLED_BACK if ok else Step.UNDO_FAILED
            elif purpose == "pause":
                item.step = Step.PAUSED if ok else Step.UNDO_FAILED
            elif purpose == "skip":  # journalled as sent, but the batch stopped first
                item.step = Step.PENDING
        elif kind == "healthy":
            for key in record["targets"]:
                state.targets[_target(key)].step = Step.HEALTHY
        elif kind == "failed":
            target = _target(record["target"])
            state.targets[target].step = Step.FAILED
            state.targets[target].reason = str(record["reason"])
            state.failed.add(target)
    return state


def describe(state: Replay, holder: int | None = None) -> list[str]:
    """What ``fleetdeck batch status`` prints: the plan, where it stands, what failed and why."""
    plan = state.plan
    meta = state.meta
    running = ""
    if state.state is BatchState.RUNNING:
        running = f" (process {holder})" if holder else " (no process: killed? resume or abort it)"
    lines = [
        f"batch {state.id}: {state.state.value}{running}"
        + (f" - {state.reason}" if state.reason else ""),
        f"  by {meta.get('user', '?')} with profile {meta.get('profile', '?')}"
        + (f", context {meta['context']}" if meta.get("context") else "")
        + (f", started {meta['created']}" if meta.get("created") else ""),
        *("  " + line for line in plan.describe()),
    ]
    for number, wave in enumerate(plan.waves):
        steps = [state.targets[t].step for t in wave]
        summary = ", ".join(
            f"{sum(s is step for s in steps)} {step.value}" for step in Step if step in steps
        )
        mark = (
            "passed"
            if number in state.waves_passed
            else (
                "current"
                if number == state.wave
                else ("not started" if number > state.wave else "")
            )
        )
        lines.append(
            f"  wave {number + 1} ({len(wave)}): {summary}" + (f" [{mark}]" if mark else "")
        )
    for target in plan.targets:
        item = state.targets[target]
        if item.reason or item.step in (Step.UNDO_FAILED, Step.SENT, Step.UNDOING):
            why = item.reason or item.message or "no answer recorded"
            lines.append(f"  {target[0]}/{target[1]}: {item.step.value}: {why}")
    return lines


def halted_batches(folder: Path | None = None) -> dict[str, str]:
    """The batches halted now (by id) and why; a journal that cannot be read is skipped."""
    found = {}
    for journal in list_journals(folder):
        try:
            state = journal.replay()
        except (JournalError, OSError, ValueError, KeyError):
            continue
        if state.state is BatchState.HALTED:
            found[journal.id] = state.reason or "halted"
    return found
