"""The deck in a real terminal: ``fleetdeck`` (no subcommand) inside tmux on the local runtime,
driven by keystrokes and read from the screen, as an on-call engineer uses it over SSH.

A temporary user with the ``local`` profile on the trained store (versions 1 and 2 of digits),
its agent running ``digits`` and ``digits-edge`` at version 1, and traffic through the gateway
while the deck is open. Every wait polls the screen with a deadline.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import requests

from console.backends.local import LocalBackend
from console.local.launch import paths_for
from console.model import DeploymentState, DeployRequest, TrainingRequest
from console.profile import Profile
from tests.e2e.terminal.tmux_terminal import EXITED, TmuxTerminal, table_row
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local import fixtures
from tests.support.processes import pids_where

digits_store = fixtures.digits_store  # the session's trained store, versions 1 and 2

FLEETDECK = str(Path(sys.executable).parent / "fleetdeck")
NAMES = ("digits", "digits-edge")


@dataclass(frozen=True)
class LocalFleet:
    profile: Profile
    backend: LocalBackend
    home: Path
    images: npt.NDArray[np.float32]

    def deck_env(self, **extra: str) -> dict[str, str]:
        """The deck's whole environment: the temporary user's folders and the local profile."""
        env = {
            "PATH": f"{Path(FLEETDECK).parent}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "FLEETDECK_PROFILE": "local",
        }
        for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            env[name] = os.environ[name]
        return env | extra


def available(backend: LocalBackend, name: str) -> bool:
    row = backend.deployment("default", name)
    return row is not None and row.state is DeploymentState.AVAILABLE and row.version == "1"


@pytest.fixture(scope="module")
def local_fleet(
    digits_store: fixtures.DigitsStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalFleet]:
    home = tmp_path_factory.mktemp("deck-user")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fixtures.use_temporary_xdg(home, monkeypatch)
        profile = fixtures.write_local_profile(digits_store.root)
        try:
            with fixtures.local_backend(profile, namespace="default") as backend:
                for name in NAMES:
                    result = backend.deploy(DeployRequest(name, "digits", 1, "default", 1))
                    assert result.ok, result.message
                for name in NAMES:
                    poll_until(f"{name} Available", partial(available, backend, name), 120)
                yield LocalFleet(profile, backend, home, digits_store.images)
        finally:
            fixtures.stop_every_agent(profile)


class Traffic:
    """Predictions to every deployment through the gateway, from a thread, until stopped."""

    def __init__(self, fleet: LocalFleet) -> None:
        self.fleet = fleet
        self.answered = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="traffic", daemon=True)

    def _send(self) -> None:
        gateway = self.fleet.backend.gateway_url()
        body = {"instances": self.fleet.images[:1].tolist()}
        with requests.Session() as session:
            while not self._stop.is_set():
                for name in NAMES:
                    url = f"{gateway}/models/{name}/v1/models/{name}:predict"
                    try:
                        if session.post(url, json=body, timeout=10).ok:
                            self.answered += 1
                    except requests.RequestException:
                        pass  # a rollout may drop a request; the deck shows errors as such
                self._stop.wait(0.1)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def row(screen: str, name: str) -> dict[str, str]:
    return table_row(screen, name) or {}


def requests_per_second(screen: str, name: str) -> float:
    try:
        return float(row(screen, name).get("REQ/S", "-"))
    except ValueError:
        return 0.0


def shows_version(name: str, version: str) -> Any:
    def seen(screen: str) -> bool:
        cells = row(screen, name)
        return (cells.get("VER"), cells.get("READY"), cells.get("STATUS")) == (
            version,
            "1/1",
            "Available",
        )

    return seen


def predictor_pid(fleet: LocalFleet, name: str) -> int:
    """The process serving deployment ``name`` (by its command line: this agent's cache folder
    and the model name it serves)."""
    cache = str(paths_for(fleet.profile).cache)

    def serves_it(words: list[str]) -> bool:
        named = any(pair == ("--model-name", name) for pair in itertools.pairwise(words))
        return "serving" in words and cache in words and named

    found = pids_where(serves_it)
    if not found:
        raise AssertionError(f"no predictor process serves {name}")
    return found[0]


def followed_lines(screen: str) -> int:
    found = re.search(r"FOLLOWING · (\d+) lines", screen)
    return int(found.group(1)) if found else -1


def quit_and_check_the_terminal_is_restored(terminal: TmuxTerminal) -> None:
    terminal.press("q")
    after = terminal.wait_for("the deck to exit", lambda s: EXITED in s, 60)
    assert terminal.exit_code() == 0, after
    assert terminal.flag("alternate_on") == "0"  # back on the shell's screen
    assert terminal.flag("cursor_flag") == "1"  # the cursor is visible again
    assert terminal.flag("mouse_any_flag") == "0"  # no mouse reporting left switched on
    assert "NAME" not in after  # the deck's table is gone with its screen


def test_the_deck_filters_opens_rolls_out_and_back_opens_logs_and_quits_cleanly(
    local_fleet: LocalFleet, terminal_120x40: TmuxTerminal
) -> None:
    term = terminal_120x40
    with Traffic(local_fleet) as traffic:
        term.start([FLEETDECK], local_fleet.deck_env(TERM="xterm-256color"))
        fleet = term.wait_for(
            "the fleet with both deployments",
            lambda s: all(row(s, n).get("STATUS") == "Available" for n in NAMES),
            120,
        )
        assert row(fleet, "digits")["VER"] == row(fleet, "digits-edge")["VER"] == "1"
        assert "2 deployments" in fleet
        assert term.flag("alternate_on") == "1"  # a full-screen program, as it should be
        term.wait_for(
            "the metrics columns to show the traffic",
            lambda s: all(requests_per_second(s, n) > 0 for n in NAMES),
            120,
        )

        # `/` filters: only digits-edge is left; enter goes back to the table.
        term.press("/")
        term.wait_for("the filter box", lambda s: "filter: text, regex" in s)
        term.type("edge")
        term.wait_for(
            "digits filtered out",
            lambda s: bool(row(s, "digits-edge")) and not row(s, "digits") and "1/2" in s,
        )
        term.press("Enter")
        term.wait_for("the filter box closed", lambda s: "filter: text" not in s)

        # enter opens the deployment: its header and revision 1.
        term.press("Enter")
        detail = term.wait_for(
            "the deployment screen with its revision",
            lambda s: "default/digits-edge  model digits v1" in s and "deploy digits v1" in s,
        )
        assert "CHANGE-CAUSE" in detail
        term.press("4")  # the conditions tab, from the local runtime's state
        term.wait_for(
            "Available and Progressing",
            lambda s: (
                re.search(r"Available\s+True\s+MinimumReplicasAvailable", s) is not None
                and re.search(r"Progressing\s+True\s+NewReplicaSetAvailable", s) is not None
            ),
        )
        term.press("Escape")
        term.wait_for("the fleet again", lambda s: bool(row(s, "digits-edge")))

        # u: roll the cursor row out to version 2 and watch it complete.
        term.press("u")
        term.wait_for("the rollout dialog", lambda s: "Roll out to a version: 1 deployment" in s)
        term.type("2")
        term.press("Enter")
        done = term.wait_for("the rollout to be sent", lambda s: "done: 1 ok, 0 failed" in s, 120)
        assert "rolled digits-edge out to digits version 2" in done
        term.press("Escape")
        term.wait_for("digits-edge at version 2, Available", shows_version("digits-edge", "2"), 120)

        # b: and back to the previous revision.
        term.press("b")
        term.wait_for("the rollback dialog", lambda s: "Roll back: 1 deployment" in s)
        term.press("Enter")
        done = term.wait_for("the rollback to be sent", lambda s: "done: 1 ok, 0 failed" in s, 120)
        assert "rolled digits-edge back" in done
        term.press("Escape")
        term.wait_for("digits-edge at version 1, Available", shows_version("digits-edge", "1"), 120)

        # l: the pod's log, followed.
        term.press("l")
        term.wait_for("the log of digits-edge's pod", shows_the_log_of("digits-edge"), 60)
        term.press("Escape")
        term.wait_for("the fleet again", lambda s: bool(row(s, "digits-edge")))

        quit_and_check_the_terminal_is_restored(term)
    assert traffic.answered > 0


def shows_the_log_of(name: str) -> Any:
    def seen(screen: str) -> bool:
        return (
            f"Logs: default/{name}" in screen
            and "serving digits version 1" in screen
            and followed_lines(screen) > 0
        )

    return seen


def test_the_log_screen_shows_new_lines_as_the_pod_writes_them(
    local_fleet: LocalFleet, terminal_120x40: TmuxTerminal
) -> None:
    # Predictors do not log each request, so the new lines come from the predictor crashing
    # (killed here) and restarted in the same pod, as on Kubernetes; traffic flows meanwhile.
    term = terminal_120x40
    with Traffic(local_fleet):
        term.start([FLEETDECK], local_fleet.deck_env(TERM="xterm-256color"))
        term.wait_for("the fleet", lambda s: bool(row(s, "digits")), 120)
        term.press("/")
        term.wait_for("the filter box", lambda s: "filter: text, regex" in s)
        term.type("digits-edge")
        term.press("Enter")
        term.wait_for("only digits-edge", lambda s: not row(s, "digits") and "1/2" in s)
        term.press("l")
        logs = term.wait_for("the log of digits-edge's pod", shows_the_log_of("digits-edge"), 60)
        before, started = followed_lines(logs), logs.count("listening on")
        os.kill(predictor_pid(local_fleet, "digits-edge"), signal.SIGKILL)
        term.wait_for(
            "the restarted process's lines",
            lambda s: s.count("listening on") > started and followed_lines(s) > before,
            60,
        )
        term.press("Escape")
        # Wait for the fleet: an Escape and a q sent together read as alt+q, which is nothing.
        term.wait_for("the fleet again", lambda s: bool(row(s, "digits-edge")))
        quit_and_check_the_terminal_is_restored(term)


SGR = re.compile(r"\x1b\[([0-9;]*)m")
GREYS_256 = {0, 7, 8, 15, 16, 231, *range(232, 256)}
COLOUR_CODES = {*range(31, 37), *range(41, 47), *range(91, 97), *range(101, 107)}


def colours(screen_with_escapes: str) -> set[str]:
    """Every colour other than a grey that the screen's SGR sequences set, e.g. ``38;5;34``."""
    found = set()
    for sequence in SGR.findall(screen_with_escapes):
        codes = [int(c) for c in sequence.split(";") if c]
        i = 0
        while i < len(codes):
            code, kind = codes[i], codes[i + 1 : i + 2]
            if code in (38, 48) and kind == [5]:
                if codes[i + 2] not in GREYS_256:
                    found.add(f"{code};5;{codes[i + 2]}")
                i += 3
            elif code in (38, 48) and kind == [2]:
                r, g, b = codes[i + 2 : i + 5]
                if not r == g == b:
                    found.add(f"{code};2;{r};{g};{b}")
                i += 5
            else:
                if code in COLOUR_CODES:
                    found.add(str(code))
                i += 1
    return found


def test_at_80x24_without_colour_the_fleet_is_readable(
    local_fleet: LocalFleet, terminal_80x24: TmuxTerminal
) -> None:
    term = terminal_80x24
    poll_until(
        "digits-edge back at version 1", partial(available, local_fleet.backend, "digits-edge"), 120
    )
    term.start([FLEETDECK], local_fleet.deck_env(TERM="xterm-256color", NO_COLOR="1"))
    fleet = term.wait_for(
        "the fleet with both deployments",
        lambda s: all(row(s, n).get("STATUS") == "Available" for n in NAMES),
        120,
    )
    # Fitted by priority: what on-call opened the deck for is on screen; NAMESPACE (one shown)
    # gives way.
    for name in NAMES:
        cells = row(fleet, name)
        assert {"READY", "STATUS", "REQ/S", "P99", "ERR%"} <= set(cells), cells
        assert "NAMESPACE" not in cells
    assert "2 deployments" in fleet
    assert all(len(line) <= 80 for line in fleet.splitlines())
    assert colours(term.screen(escapes=True)) == set()  # NO_COLOR: shades of grey only
    term.press("C-w")  # the wide view: every column, scrolled sideways
    wide = term.wait_for("the wide view", lambda s: "NAMESPACE" in s)
    for name in NAMES:
        cells = row(wide, name)
        assert (cells["NAMESPACE"], cells["MODEL"], cells["VER"]) == ("default", "digits", "1")
    assert all(len(line) <= 80 for line in wide.splitlines())
    quit_and_check_the_terminal_is_restored(term)


def test_a_training_jobs_log_shows_new_lines_as_they_are_written(
    local_fleet: LocalFleet, digits_store: fixtures.DigitsStore, terminal_120x40: TmuxTerminal
) -> None:
    request = TrainingRequest("digits", str(digits_store.data), epochs=60, params={"width": 8})
    (started,) = local_fleet.backend.train(request)
    assert started.ok, started.message
    job = started.target.split("/", 1)[1]
    term = terminal_120x40
    try:
        term.start([FLEETDECK], local_fleet.deck_env(TERM="xterm-256color"))
        term.wait_for("the fleet", lambda s: bool(row(s, "digits")), 120)
        term.command("jobs")
        term.wait_for("the job, running", lambda s: job in s and "Running" in s, 120)
        term.press("l")
        first = term.wait_for(
            "the job's log, followed",
            lambda s: f"job {job}" in s and "epoch" in s and followed_lines(s) > 0,
            60,
        )
        term.wait_for("new epoch lines", lambda s: followed_lines(s) > followed_lines(first), 60)
        term.press("Escape")
        term.wait_for("the jobs again", lambda s: "PROGRESS" in s and "FOLLOWING" not in s)
        term.press("Escape")
        term.wait_for("the fleet again", lambda s: bool(row(s, "digits")))
        quit_and_check_the_terminal_is_restored(term)
    finally:
        local_fleet.backend.cancel_job("default", job)
