"""The agent's desired state in SQLite (WAL): deployments, their revisions, autoscalers and
their decisions, training jobs.

Only the agent writes it, from its one event loop, so every change is one short transaction;
WAL keeps a crash from ever leaving a half-written row. What runs (processes, ports, readiness)
is not here: the agent rebuilds it from this state when it starts.

Rows are read without trusting them: a database written by an older agent (or by hand) may hold
a name that is not a DNS-1123 label, a model name with a newline, or a value of the wrong type.
Every row still comes back, its fields of the declared types, with ``problem`` saying what is
wrong ("" when nothing is); the fleet fails such a deployment instead of acting on it, and a
job with a problem reads as Failed, so it is never started.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.model import JobPhase, ScalingDecision
from console.names import InvalidName, check_label
from serving.store import StoreError, check_model_name

SCHEMA = """
CREATE TABLE IF NOT EXISTS deployments (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    replicas INTEGER NOT NULL,
    revision INTEGER NOT NULL,          -- the revision that should serve
    serving_revision INTEGER,           -- the revision that last turned ready and took traffic
    paused INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS revisions (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    number INTEGER NOT NULL,
    model TEXT NOT NULL,
    version INTEGER NOT NULL,
    change_cause TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (namespace, name, number)
);
CREATE TABLE IF NOT EXISTS jobs (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    model TEXT NOT NULL,
    data TEXT NOT NULL,
    args TEXT NOT NULL,                 -- JSON list of extra `python -m training` flags
    gpus INTEGER NOT NULL,
    sweep TEXT,
    trial INTEGER,
    phase TEXT NOT NULL,                -- Pending | Running | Succeeded | Failed
    reason TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    kind TEXT NOT NULL DEFAULT 'train', -- train (python -m training) | score (training.score)
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS autoscalers (   -- one per deployment, deleted with it
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    min_replicas INTEGER NOT NULL,
    max_replicas INTEGER NOT NULL,
    rps_per_pod REAL NOT NULL,          -- target: requests/s per ready replica
    scale_down_seconds INTEGER,         -- stabilization window; NULL: the HPA's 300 s
    created TEXT NOT NULL,
    changed TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS scaling_decisions (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    at REAL NOT NULL,                   -- epoch seconds
    from_replicas INTEGER NOT NULL,
    to_replicas INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scaling_decisions_by_deployment
    ON scaling_decisions (namespace, name, at);
"""
DECISIONS_KEPT = 20  # per deployment: the newest
# Columns added after the first release, with their definitions: a state written by an older
# agent gets them when a newer one opens it.
ADDED_COLUMNS = {"jobs": {"kind": "TEXT NOT NULL DEFAULT 'train'"}}
JOB_KINDS = ("train", "score")
JOB_PHASES = frozenset(phase.value for phase in JobPhase)
JOB_COLUMNS = (
    "namespace, name, model, data, args, gpus, sweep, trial, phase, reason, created, started, "
    "finished, kind"
)


def now() -> str:
    return datetime.now(UTC).isoformat()


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class DeploymentRow:
    namespace: str
    name: str
    model: str
    replicas: int
    revision: int
    serving_revision: int | None
    paused: bool
    created: str
    problem: str = ""  # why this row cannot be acted on; "" when it can

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class RevisionRow:
    namespace: str
    name: str
    number: int
    model: str
    version: int
    change_cause: str
    created: str
    problem: str = ""  # why this revision cannot run; "" when it can


@dataclass(frozen=True)
class AutoscalerRow:
    namespace: str
    name: str
    min_replicas: int
    max_replicas: int
    rps_per_pod: float
    scale_down_seconds: int | None
    created: str
    changed: str
    problem: str = ""  # why this autoscaler cannot act; "" when it can

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class JobRow:
    namespace: str
    name: str
    model: str
    data: str
    args: tuple[str, ...]
    gpus: int
    sweep: str | None
    trial: int | None
    phase: str
    reason: str
    created: str
    started: str | None
    finished: str | None
    kind: str = "train"  # "score": python -m training.score (data is the keyed inputs)
    problem: str = ""  # why this job cannot run (it then reads as Failed); "" when it can

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


class State:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {r["name"] for r in self.db.execute(f"PRAGMA table_info({table})")}
            for column, definition in columns.items():
                if column not in present:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- deployments ------------------------------------------------------------------------
    def deployments(self) -> list[DeploymentRow]:
        rows = self.db.execute("SELECT * FROM deployments ORDER BY namespace, name").fetchall()
        return [_deployment(r) for r in rows]

    def deployment(self, namespace: str, name: str) -> DeploymentRow | None:
        row = self.db.execute(
            "SELECT * FROM deployments WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return _deployment(row) if row else None

    def create_deployment(
        self, namespace: str, name: str, model: str, version: int, replicas: int, cause: str
    ) -> None:
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, 1, NULL, 0, ?)",
                (namespace, name, model, replicas, stamp),
            )
            db.execute("DELETE FROM revisions WHERE namespace = ? AND name = ?", (namespace, name))
            db.execute(
                "INSERT INTO revisions VALUES (?, ?, 1, ?, ?, ?, ?)",
                (namespace, name, model, version, cause, stamp),
            )

    def new_revision(
        self, namespace: str, name: str, model: str, version: int, cause: str, *, moved: int = 0
    ) -> int:
        """Record a revision and make it the one that should serve; ``moved`` is an older
        revision re-used by a rollback (its number goes, as kubectl's undo renumbers it)."""
        with self.transaction() as db:
            (latest,) = db.execute(
                "SELECT COALESCE(MAX(number), 0) FROM revisions WHERE namespace = ? AND name = ?",
                (namespace, name),
            ).fetchone()
            number = int(latest) + 1
            if moved:
                db.execute(
                    "DELETE FROM revisions WHERE namespace = ? AND name = ? AND number = ?",
                    (namespace, name, moved),
                )
            db.execute(
                "INSERT INTO revisions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (namespace, name, number, model, version, cause, now()),
            )
            db.execute(
                "UPDATE deployments SET revision = ?, model = ? WHERE namespace = ? AND name = ?",
                (number, model, namespace, name),
            )
        return number

    def update_deployment(self, namespace: str, name: str, **fields: Any) -> None:
        allowed = {"replicas", "serving_revision", "paused"}
        if not fields or set(fields) - allowed:
            raise ValueError(f"cannot update {sorted(fields)} (only {sorted(allowed)})")
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(
                f"UPDATE deployments SET {assignments} WHERE namespace = ? AND name = ?",
                (*fields.values(), namespace, name),
            )

    def delete_deployment(self, namespace: str, name: str) -> None:
        """The deployment, its revisions, its autoscaler and the autoscaler's decisions."""
        with self.transaction() as db:
            for table in ("deployments", "revisions", "autoscalers", "scaling_decisions"):
                db.execute(
                    f"DELETE FROM {table} WHERE namespace = ? AND name = ?", (namespace, name)
                )

    # -- autoscalers ------------------------------------------------------------------------
    def autoscalers(self) -> list[AutoscalerRow]:
        rows = self.db.execute("SELECT * FROM autoscalers ORDER BY namespace, name").fetchall()
        return [_autoscaler(r) for r in rows]

    def autoscaler(self, namespace: str, name: str) -> AutoscalerRow | None:
        row = self.db.execute(
            "SELECT * FROM autoscalers WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return _autoscaler(row) if row else None

    def put_autoscaler(
        self,
        namespace: str,
        name: str,
        min_replicas: int,
        max_replicas: int,
        rps_per_pod: float,
        scale_down_seconds: int | None,
    ) -> None:
        """Create the deployment's autoscaler, or replace its settings (created stays)."""
        stamp = now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO autoscalers VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (namespace, name) DO UPDATE SET min_replicas = excluded.min_replicas,"
                " max_replicas = excluded.max_replicas, rps_per_pod = excluded.rps_per_pod,"
                " scale_down_seconds = excluded.scale_down_seconds, changed = excluded.changed",
                (
                    namespace,
                    name,
                    min_replicas,
                    max_replicas,
                    rps_per_pod,
                    scale_down_seconds,
                    stamp,
                    stamp,
                ),
            )

    def scale_by_autoscaler(
        self, namespace: str, name: str, replicas: int, decision: ScalingDecision
    ) -> None:
        """The autoscaler's new count and the decision behind it, in one transaction (the
        newest :data:`DECISIONS_KEPT` are kept)."""
        with self.transaction() as db:
            db.execute(
                "UPDATE deployments SET replicas = ? WHERE namespace = ? AND name = ?",
                (replicas, namespace, name),
            )
            db.execute(
                "INSERT INTO scaling_decisions VALUES (?, ?, ?, ?, ?, ?)",
                (
                    namespace,
                    name,
                    decision.at,
                    decision.from_replicas,
                    decision.to_replicas,
                    decision.reason,
                ),
            )
            db.execute(
                "DELETE FROM scaling_decisions WHERE namespace = ? AND name = ? AND rowid NOT IN "
                "(SELECT rowid FROM scaling_decisions WHERE namespace = ? AND name = ? "
                "ORDER BY at DESC, rowid DESC LIMIT ?)",
                (namespace, name, namespace, name, DECISIONS_KEPT),
            )

    def decisions(self, namespace: str, name: str) -> list[ScalingDecision]:
        """The autoscaler's decisions, newest first."""
        rows = self.db.execute(
            "SELECT * FROM scaling_decisions WHERE namespace = ? AND name = ? "
            "ORDER BY at DESC, rowid DESC",
            (namespace, name),
        ).fetchall()
        return [d for d in map(_decision, rows) if d is not None]

    def revisions(self, namespace: str, name: str) -> list[RevisionRow]:
        rows = self.db.execute(
            "SELECT * FROM revisions WHERE namespace = ? AND name = ? ORDER BY number",
            (namespace, name),
        ).fetchall()
        return [_revision(r) for r in rows]

    def revision(self, namespace: str, name: str, number: int) -> RevisionRow | None:
        row = self.db.execute(
            "SELECT * FROM revisions WHERE namespace = ? AND name = ? AND number = ?",
            (namespace, name, number),
        ).fetchone()
        return _revision(row) if row else None

    # -- jobs -------------------------------------------------------------------------------
    def jobs(self) -> list[JobRow]:
        rows = self.db.execute("SELECT * FROM jobs ORDER BY created, namespace, name").fetchall()
        return [_job(r) for r in rows]

    def job(self, namespace: str, name: str) -> JobRow | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        return _job(row) if row else None

    def add_jobs(self, jobs: Sequence[JobRow]) -> None:
        with self.transaction() as db:
            for j in jobs:
                db.execute(
                    f"INSERT INTO jobs ({JOB_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        j.namespace,
                        j.name,
                        j.model,
                        j.data,
                        json.dumps(list(j.args)),
                        j.gpus,
                        j.sweep,
                        j.trial,
                        j.phase,
                        j.reason,
                        j.created,
                        j.started,
                        j.finished,
                        j.kind,
                    ),
                )

    def set_job_phase(
        self,
        namespace: str,
        name: str,
        phase: str,
        reason: str = "",
        *,
        started: str | None = None,
        finished: str | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET phase = ?, reason = ?, started = COALESCE(?, started), "
                "finished = ? WHERE namespace = ? AND name = ?",
                (phase, reason, started, finished, namespace, name),
            )


class _Untrusted:
    """One stored row's columns read without trusting them: a value of the wrong type comes
    back as a harmless one of the right type, and every finding is kept in ``problems``."""

    def __init__(self, row: sqlite3.Row) -> None:
        self.values = dict(row)
        self.problems: list[str] = []

    def _wrong(self, column: str, wanted: str) -> None:
        self.problems.append(f"{column} {self.values[column]!r} is not {wanted}")

    def text(self, column: str) -> str:
        value = self.values[column]
        if isinstance(value, str):
            return value
        self._wrong(column, "text")
        return "" if value is None else str(value)

    def optional_text(self, column: str) -> str | None:
        return None if self.values[column] is None else self.text(column)

    def integer(self, column: str, minimum: int) -> int:
        value = self.values[column]
        if isinstance(value, int) and value >= minimum:
            return value
        self._wrong(column, f"a whole number of at least {minimum}")
        return minimum

    def positive_number(self, column: str) -> float:
        value = self.values[column]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and math.isfinite(value) and value > 0:
            return float(value)
        self._wrong(column, "a number above 0")
        return 1.0

    def optional_integer(self, column: str, minimum: int) -> int | None:
        return None if self.values[column] is None else self.integer(column, minimum)

    def label(self, column: str) -> str:
        value = self.text(column)
        try:
            check_label(value, column)
        except InvalidName as exc:
            self.problems.append(str(exc))
        return value

    def model(self, column: str) -> str:
        value = self.text(column)
        try:
            check_model_name(value)
        except StoreError as exc:
            self.problems.append(str(exc))
        return value

    def time(self, column: str) -> str:
        """An ISO time, or "" (no time) when the stored one does not parse."""
        value = self.text(column)
        try:
            parse_time(value)
        except ValueError:
            self._wrong(column, "an ISO time")
            return ""
        return value

    def optional_time(self, column: str) -> str | None:
        return None if self.values[column] is None else self.time(column) or None

    def one_of(self, column: str, allowed: Collection[str], otherwise: str) -> str:
        value = self.text(column)
        if value in allowed:
            return value
        self._wrong(column, "one of " + ", ".join(sorted(allowed)))
        return otherwise

    def arguments(self, column: str) -> tuple[str, ...]:
        try:
            value = json.loads(self.text(column))
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self._wrong(column, "a JSON list of strings")
        return ()

    @property
    def problem(self) -> str:
        return "; ".join(self.problems)


def _deployment(row: sqlite3.Row) -> DeploymentRow:
    read = _Untrusted(row)
    return DeploymentRow(
        namespace=read.label("namespace"),
        name=read.label("name"),
        model=read.model("model"),
        replicas=read.integer("replicas", 0),
        revision=read.integer("revision", 1),
        serving_revision=read.optional_integer("serving_revision", 1),
        paused=bool(read.integer("paused", 0)),
        created=read.time("created"),
        problem=read.problem,
    )


def _autoscaler(row: sqlite3.Row) -> AutoscalerRow:
    read = _Untrusted(row)
    minimum = read.integer("min_replicas", 1)
    maximum = read.integer("max_replicas", 1)
    if maximum < minimum:
        read.problems.append(f"max_replicas {maximum} is below min_replicas {minimum}")
    return AutoscalerRow(
        namespace=read.label("namespace"),
        name=read.label("name"),
        min_replicas=minimum,
        max_replicas=maximum,
        rps_per_pod=read.positive_number("rps_per_pod"),
        scale_down_seconds=read.optional_integer("scale_down_seconds", 0),
        created=read.time("created"),
        changed=read.time("changed"),
        problem=read.problem,
    )


def _decision(row: sqlite3.Row) -> ScalingDecision | None:
    """A stored decision, or None when it is not one (a row no agent wrote)."""
    read = _Untrusted(row)
    at = read.values["at"]
    decision = ScalingDecision(
        at=float(at) if isinstance(at, (int, float)) and math.isfinite(at) else 0.0,
        from_replicas=read.integer("from_replicas", 0),
        to_replicas=read.integer("to_replicas", 0),
        reason=read.text("reason"),
    )
    return None if read.problem or not decision.reason.isprintable() else decision


def _revision(row: sqlite3.Row) -> RevisionRow:
    read = _Untrusted(row)
    return RevisionRow(
        namespace=read.text("namespace"),  # the deployment's row checks its names
        name=read.text("name"),
        number=read.integer("number", 1),
        model=read.model("model"),
        version=read.integer("version", 1),
        change_cause=read.text("change_cause"),
        created=read.time("created"),
        problem=read.problem,
    )


def _job(row: sqlite3.Row) -> JobRow:
    read = _Untrusted(row)
    job = JobRow(
        namespace=read.label("namespace"),
        name=read.label("name"),
        model=read.model("model"),
        data=read.text("data"),
        args=read.arguments("args"),
        gpus=read.integer("gpus", 0),
        sweep=read.optional_text("sweep"),
        trial=read.optional_integer("trial", 0),
        phase=read.one_of("phase", JOB_PHASES, JobPhase.FAILED.value),
        reason=read.text("reason"),
        created=read.time("created"),
        started=read.optional_time("started"),
        finished=read.optional_time("finished"),
        kind=read.one_of("kind", JOB_KINDS, JOB_KINDS[0]),
    )
    if not read.problem:
        return job
    # Never started (start_pending takes Pending jobs only) and shown with the reason.
    reason = f"not run: {read.problem}"
    return dataclasses.replace(
        job, phase=JobPhase.FAILED.value, reason=reason, problem=read.problem
    )
