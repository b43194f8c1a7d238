"""A job's kind (training or scoring) in the agent's state, also in a state an agent from
before scoring wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from console.local.state import JobRow, State, now

# The jobs table as agents wrote it before scoring jobs existed (no kind column).
OLD_JOBS = """
CREATE TABLE jobs (
    namespace TEXT NOT NULL, name TEXT NOT NULL, model TEXT NOT NULL, data TEXT NOT NULL,
    args TEXT NOT NULL, gpus INTEGER NOT NULL, sweep TEXT, trial INTEGER, phase TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '', created TEXT NOT NULL, started TEXT, finished TEXT,
    PRIMARY KEY (namespace, name)
);
INSERT INTO jobs VALUES
    ('default', 'train-old', 'digits', '/data', '[]', 0, NULL, NULL, 'Succeeded', '',
     '2026-01-01T00:00:00+00:00', NULL, NULL);
"""


def job(name: str, kind: str = "train") -> JobRow:
    args = ("--version", "2")
    return JobRow(
        "default", name, "digits", "/photos", args, 0, None, None, "Pending", "", now(), None,
        None, kind=kind,
    )  # fmt: skip


def test_a_scoring_job_keeps_its_kind_and_training_is_the_default(tmp_path: Path) -> None:
    state = State(tmp_path / "state.db")
    state.add_jobs([job("score-a", kind="score"), job("train-a")])
    state.close()
    kinds = {j.name: j.kind for j in State(tmp_path / "state.db").jobs()}
    assert kinds == {"score-a": "score", "train-a": "train"}


def test_a_state_from_before_scoring_opens_with_its_jobs_as_training(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.executescript(OLD_JOBS)
    state = State(path)
    state.add_jobs([job("score-new", kind="score")])
    assert [(j.name, j.kind) for j in state.jobs()] == [
        ("train-old", "train"),
        ("score-new", "score"),
    ]
