"""The agent's desired state in SQLite (WAL): deployments, their revisions, training jobs.

Only the agent writes it, from its one event loop, so every change is one short transaction;
WAL keeps a crash from ever leaving a half-written row. What runs (processes, ports, readiness)
is not here: the agent rebuilds it from this state when it starts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
"""
# Columns added after the first release, with their definitions: a state written by an older
# agent gets them when a newer one opens it.
ADDED_COLUMNS = {"jobs": {"kind": "TEXT NOT NULL DEFAULT 'train'"}}
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
        with self.transaction() as db:
            db.execute(
                "DELETE FROM deployments WHERE namespace = ? AND name = ?", (namespace, name)
            )
            db.execute("DELETE FROM revisions WHERE namespace = ? AND name = ?", (namespace, name))

    def revisions(self, namespace: str, name: str) -> list[RevisionRow]:
        rows = self.db.execute(
            "SELECT * FROM revisions WHERE namespace = ? AND name = ? ORDER BY number",
            (namespace, name),
        ).fetchall()
        return [RevisionRow(**dict(r)) for r in rows]

    def revision(self, namespace: str, name: str, number: int) -> RevisionRow | None:
        row = self.db.execute(
            "SELECT * FROM revisions WHERE namespace = ? AND name = ? AND number = ?",
            (namespace, name, number),
        ).fetchone()
        return RevisionRow(**dict(row)) if row else None

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


def _deployment(row: sqlite3.Row) -> DeploymentRow:
    values = dict(row)
    values["paused"] = bool(values["paused"])
    return DeploymentRow(**values)


def _job(row: sqlite3.Row) -> JobRow:
    values = dict(row)
    values["args"] = tuple(json.loads(values["args"]))
    return JobRow(**values)
