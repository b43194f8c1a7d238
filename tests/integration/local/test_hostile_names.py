"""Hostile names against the real local agent: refused with the naming rule before any state or
file is touched; a bad row left in the state fails alone while the rest of the fleet rolls out;
the CLI shows what such a row holds escaped."""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from console.backends.base import LogRequest
from console.backends.local import LocalBackend, LocalError
from console.local.launch import paths_for
from console.local.state import now
from console.model import ActionResult, DeploymentState, DeployRequest
from console.names import LABEL_RULE
from console.profile import Profile
from tests.infra.k8s_fixtures import poll_until
from tests.support.cli import run_fleetdeck

ROOT = Path(__file__).resolve().parents[3]
# Far enough up to leave any temporary folder: what a traversal would create, at an absolute
# place the test can look at.
ESCAPE = f"fleetdeck-escape-{uuid.uuid4().hex[:8]}"
DEEP = "../" * 16 + "tmp/" + ESCAPE
HOSTILE_NAMESPACES = ("../../x", "a/b", "A", "ns\n", DEEP)
HOSTILE_NAMES = ("../../x", "a/b", "A", "name\n", "x\x1b[2J", DEEP)


def every_path(top: Path) -> set[Path]:
    return {p.relative_to(top) for p in top.rglob("*")}


@pytest.fixture
def outside_state(profile: Profile, tmp_path: Path) -> Iterator[Callable[[], set[Path]]]:
    """The files and folders under the test's temporary folder but outside the agent's state
    folder, as a function; the test's end checks nothing new appeared there or at ``/tmp``."""
    state = paths_for(profile).root

    def outside() -> set[Path]:
        return {p for p in every_path(tmp_path) if not (tmp_path / p).is_relative_to(state)}

    yield outside
    assert not Path("/tmp", ESCAPE).exists()


@contextlib.contextmanager
def refused(*words: str) -> Iterator[None]:
    """The agent refused what the block sent as the client's fault (400), in these words."""
    with pytest.raises(LocalError) as caught:
        yield
    message = str(caught.value)
    assert "400" in message, message
    for word in words:
        assert word in message, message


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args)


def test_a_deploy_with_a_hostile_namespace_name_or_model_is_refused_and_creates_nothing(
    backend: LocalBackend, outside_state: Callable[[], set[Path]]
) -> None:
    before = outside_state()
    logs = paths_for(backend.profile).logs
    for namespace in HOSTILE_NAMESPACES:
        with refused("invalid namespace", LABEL_RULE):
            backend.deploy(DeployRequest("ok", "digits", 1, namespace, 1))
    for name in HOSTILE_NAMES:
        with refused("invalid deployment name", LABEL_RULE):
            backend.deploy(DeployRequest(name, "digits", 1, "default", 1))
    # verify=False skips the store's check, not the rule
    for model in ("digits\n", "../digits", "Digits"):
        with refused("invalid model name"):
            backend.deploy(DeployRequest("ok", model, 1, "default", 1), verify=False)
    assert backend.deployments() == []
    assert outside_state() == before
    assert not logs.exists() or every_path(logs) == set()


def test_every_action_on_a_hostile_namespace_or_name_is_refused_with_the_rule(
    backend: LocalBackend, outside_state: Callable[[], set[Path]]
) -> None:
    before = outside_state()
    actions: list[Callable[[str, str], ActionResult]] = [
        lambda ns, n: backend.rollout(ns, n, 2),
        lambda ns, n: backend.rollout(ns, n, 2, verify=False),
        lambda ns, n: backend.rollback(ns, n),
        lambda ns, n: backend.scale(ns, n, 2),
        lambda ns, n: backend.restart(ns, n),
        lambda ns, n: backend.pause(ns, n),
        lambda ns, n: backend.resume(ns, n),
        lambda ns, n: backend.delete(ns, n),
        lambda ns, n: backend.cancel_job(ns, n),
    ]
    for act in actions:
        for namespace in HOSTILE_NAMESPACES:
            with refused("invalid namespace", LABEL_RULE):
                act(namespace, "digits-a")
        for name in HOSTILE_NAMES:
            with refused("invalid", LABEL_RULE):
                act("default", name)
    assert outside_state() == before


def test_numbers_of_the_wrong_sign_are_refused_as_the_clients_fault(backend: LocalBackend) -> None:
    with refused("version must be 1 or more"):
        backend.deploy(DeployRequest("ok", "digits", 0, "default", 1))
    with refused("gpus must be 0 or more"):
        backend.deploy(DeployRequest("ok", "digits", 1, "default", 1, gpus=-1))
    with refused("replicas must be 0 or more"):
        backend.scale("default", "ok", -1)
    with refused("version must be 1 or more"):
        backend.rollout("default", "ok", -2)
    assert backend.deployments() == []


def test_logs_of_a_hostile_namespace_or_pod_are_refused_with_the_rule(
    backend: LocalBackend, outside_state: Callable[[], set[Path]]
) -> None:
    before = outside_state()
    for namespace in HOSTILE_NAMESPACES:
        with pytest.raises(LocalError, match="invalid namespace"):
            list(backend.logs(LogRequest(["digits-a-1-0"], namespace)))
    for pod in ("../../../agent", "a/b", "pod\n"):
        with pytest.raises(LocalError, match="invalid pod name"):
            list(backend.logs(LogRequest([pod], "default")))
    assert outside_state() == before


# -- a bad row in the state -------------------------------------------------------------------
BAD_NAME = "Bad\x1b[2J\nrow"
BAD_ROWS = [
    # (namespace, name, model, replicas): what an older agent or a hand edit may have left
    ("default", "bad-model", "digits\n", 1),
    ("default", BAD_NAME, "digits", 1),
    ("default", "bad-replicas", "digits", "many"),
    ("../../escaped", "x", "digits", 1),
]


def write_rows_straight_into_the_state(database: Path) -> None:
    with sqlite3.connect(database, timeout=30) as db:
        for namespace, name, model, replicas in BAD_ROWS:
            db.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, 1, NULL, 0, ?)",
                (namespace, name, model, replicas, now()),
            )
            db.execute(
                "INSERT INTO revisions VALUES (?, ?, 1, ?, 1, 'written by hand', ?)",
                (namespace, name, model, now()),
            )


def state_of(backend: LocalBackend, name: str, namespace: str = "default") -> tuple[str, str]:
    row = backend.deployment(namespace, name)
    return (row.state.value, row.reason) if row is not None else ("absent", "")


def test_a_bad_row_fails_alone_and_the_good_deployment_still_rolls_out(
    backend: LocalBackend, outside_state: Callable[[], set[Path]]
) -> None:
    before = outside_state()
    paths = paths_for(backend.profile)
    result = backend.deploy(DeployRequest("digits-a", "digits", 1, "default", 1))
    assert result.ok, result.message
    poll_until("digits-a Available", lambda: state_of(backend, "digits-a")[0] == "Available", 120)

    write_rows_straight_into_the_state(paths.database)
    poll_until(
        "the bad rows shown Failed",
        lambda: all(state_of(backend, n)[0] == "Failed" for _, n, _, _ in BAD_ROWS[:3]),
        60,
    )
    rolled = backend.rollout("default", "digits-a", 2)
    assert rolled.ok, rolled.message
    poll_until(
        "digits-a Available at version 2",
        lambda: (
            (row := backend.deployment("default", "digits-a")) is not None
            and row.state is DeploymentState.AVAILABLE
            and row.version == "2"
        ),
        120,
    )

    assert "invalid model name 'digits\\n'" in state_of(backend, "bad-model")[1]
    assert "invalid name 'Bad\\x1b[2J\\nrow'" in state_of(backend, BAD_NAME)[1]
    assert "replicas 'many' is not a whole number" in state_of(backend, "bad-replicas")[1]
    events = backend.events("default", "bad-model")
    assert any(e.kind == "Warning" and "invalid model name" in e.message for e in events)
    # Nothing ran for them: no predictor, no log, nothing outside the state folder.
    assert backend.pods("default", "bad-model") == []
    assert sorted(p.name for p in paths.logs.iterdir()) == ["default"]
    assert not any("bad" in p.name for p in (paths.logs / "default").iterdir())
    assert outside_state() == before
    # Said once per row in the agent's log, not a traceback every tick.
    log = paths.agent_log.read_text(errors="replace")
    assert "Traceback" not in log
    assert log.count("cannot be reconciled") == len(BAD_ROWS)

    # What the CLI shows of them: one line per row, the escape sequence and newline escaped.
    listed = fleetdeck("ls")
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + 1 + len(BAD_ROWS)  # header, digits-a, the bad rows
    bad_line = next(line for line in lines if line.split()[1].startswith("Bad"))
    assert "Bad\\x1b[2J\\nrow" in bad_line
    assert "Failed: invalid name" in bad_line
    status = fleetdeck("status", "bad-model")
    assert status.returncode == 1
    assert "Failed" in status.stdout
    assert "\n" not in status.stdout.rstrip("\n")
