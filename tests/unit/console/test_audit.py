"""The audit log: one whole JSON line per mutation, even with several writers or after a crash."""

from __future__ import annotations

import json
import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from console.audit import (
    AuditEntry,
    TargetResult,
    append_audit,
    audit_path,
    current_user,
    format_entry,
    kube_context_user,
    parse_since,
    read_audit,
    record,
)

NOW = datetime(2026, 11, 26, 18, 0, tzinfo=UTC)


def entry(action: str = "rollout", *, at: datetime = NOW, note: str = "") -> AuditEntry:
    return AuditEntry(
        time=at,
        user="oncall",
        profile="kwok",
        context="kwok-oncall",
        action=action,
        targets=("models/photos", "models/digits"),
        parameters={"version": 3, "note": note},
        dry_run=False,
        results=(TargetResult("models/photos", True), TargetResult("models/digits", False, "403")),
    )


def test_each_mutation_appends_one_json_line_with_every_field(tmp_path: Path) -> None:
    log = tmp_path / "state" / "audit.jsonl"
    first = record(
        "scale",
        ["models/photos"],
        profile="kwok",
        context="kwok-admin",
        results=[TargetResult("models/photos", True, "scaled to 3")],
        parameters={"replicas": 3},
        dry_run=True,
        user="admin",
        path=log,
        now=NOW,
    )
    append_audit(entry(), log)
    lines = log.read_text().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "time": "2026-11-26T18:00:00.000+00:00",
        "user": "admin",
        "profile": "kwok",
        "context": "kwok-admin",
        "action": "scale",
        "targets": ["models/photos"],
        "parameters": {"replicas": 3},
        "dry_run": True,
        "results": [{"target": "models/photos", "ok": True, "message": "scaled to 3"}],
    }
    assert read_audit(path=log) == [first, entry()]


def test_the_log_lives_in_the_xdg_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert audit_path() == tmp_path / "fleetdeck" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert audit_path() == tmp_path / "home" / ".local/state/fleetdeck/audit.jsonl"


def _write_many(log: str, writer: int, count: int) -> None:
    # Lines well over PIPE_BUF (4 KiB) so that unlocked, unbuffered writes could interleave.
    for i in range(count):
        append_audit(entry(f"w{writer}-{i}", note="x" * 9000), Path(log))


def test_concurrent_writers_in_several_processes_produce_only_whole_lines(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.jsonl"
    writers, count = 6, 60
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_many, args=(str(log), w, count)) for w in range(writers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""  # the file ends with a newline
    actions = [json.loads(line)["action"] for line in lines[:-1]]
    assert sorted(actions) == sorted(f"w{w}-{i}" for w in range(writers) for i in range(count))
    assert len(read_audit(path=log)) == writers * count


def test_since_keeps_only_recent_entries(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    for minutes in (120, 45, 5):
        append_audit(entry(f"{minutes}m-ago", at=NOW - timedelta(minutes=minutes)), log)
    recent = read_audit(timedelta(hours=1), path=log, now=NOW)
    assert [e.action for e in recent] == ["45m-ago", "5m-ago"]
    assert len(read_audit(None, path=log, now=NOW)) == 3


def test_a_torn_last_line_is_skipped_and_the_next_append_starts_a_fresh_line(
    tmp_path: Path,
) -> None:
    log = tmp_path / "audit.jsonl"
    append_audit(entry("before"), log)
    whole = json.dumps(entry("torn").to_json())
    with log.open("a") as handle:  # what a writer killed mid-line (or a power cut) leaves
        handle.write(whole[: len(whole) // 2])
    assert [e.action for e in read_audit(path=log)] == ["before"]
    append_audit(entry("after"), log)
    assert [e.action for e in read_audit(path=log)] == ["before", "after"]


def test_a_missing_log_reads_as_empty(tmp_path: Path) -> None:
    assert read_audit(path=tmp_path / "none.jsonl") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_parse_since_reads_durations(text: str, expected: timedelta) -> None:
    assert parse_since(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1w", "-1h", "1h x", "1.5h"])
def test_parse_since_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 30s"):
        parse_since(text)


def test_the_user_is_the_kube_contexts_user_else_the_os_user(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "current-context": "kwok-admin",
                "contexts": [
                    {"name": "kwok-admin", "context": {"cluster": "c", "user": "admin"}},
                    {"name": "kwok-oncall", "context": {"cluster": "c", "user": "oncall"}},
                ],
            }
        )
    )
    assert kube_context_user(kubeconfig, "kwok-oncall") == "oncall"
    assert kube_context_user(kubeconfig, None) == "admin"
    assert kube_context_user(kubeconfig, "missing") is None
    assert kube_context_user(tmp_path / "absent", None) is None
    assert current_user("oncall") == "oncall"
    assert current_user(None)  # the OS user, never empty


def test_an_entry_reads_as_one_line_for_humans() -> None:
    line = format_entry(entry())
    assert line == (
        "2026-11-26 18:00:00Z  oncall@kwok/kwok-oncall  rollout  models/photos, models/digits  "
        "1 failed: models/digits"
    )
