"""The README's main command, ``scripts/demo``, on a temporary user whose store already holds
two trained versions of digits (so nothing is trained here): in a terminal it ends in the deck
on the two deployments with traffic flowing, and quitting the deck stops the traffic; without a
terminal it prints the fleet and a curl instead."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.profile import Profile
from tests.e2e.terminal.tmux_terminal import EXITED, TmuxTerminal, table_row
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local import fixtures
from tests.support.processes import pids_where

digits_store = fixtures.digits_store  # the session's trained store, versions 1 and 2

ROOT = Path(__file__).resolve().parents[3]
DEMO = str(ROOT / "scripts" / "demo")


@dataclass(frozen=True)
class DemoUser:
    profile: Profile
    env: dict[str, str]

    @property
    def gateway(self) -> str:
        assert self.profile.local is not None
        return f"127.0.0.1:{self.profile.local.gateway_port}"


@pytest.fixture(scope="module")
def demo_user(
    digits_store: fixtures.DigitsStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoUser]:
    home = tmp_path_factory.mktemp("demo-user")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fixtures.use_temporary_xdg(home, monkeypatch)
        profile = fixtures.write_local_profile(digits_store.root)
        env = {
            "PATH": os.environ["PATH"],  # the same python3 as the checkout's bootstrap stamp
            "HOME": str(home),
            "LANG": "C.UTF-8",
            **{k: os.environ[k] for k in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME")},
        }
        try:
            yield DemoUser(profile, env)
        finally:
            fixtures.stop_every_agent(profile)


def requests_per_second(screen: str, name: str) -> float:
    try:
        return float((table_row(screen, name) or {}).get("REQ/S", "-"))
    except ValueError:
        return 0.0


def sending_to(gateway: str) -> list[int]:
    """Processes (the demo's traffic loop's curl) with the gateway in their command line."""
    return pids_where(
        lambda words: Path(words[0]).name == "curl" and any(gateway in w for w in words)
    )


def test_in_a_terminal_the_demo_ends_in_the_deck_with_traffic_that_stops_on_quit(
    demo_user: DemoUser, terminal_120x40: TmuxTerminal
) -> None:
    terminal = terminal_120x40
    terminal.start([DEMO], demo_user.env | {"TERM": "xterm-256color"})
    deck = terminal.wait_for(
        "the deck on digits (2 replicas) and digits-edge, traffic flowing to both",
        lambda s: (
            (table_row(s, "digits") or {}).get("READY") == "2/2"
            and (table_row(s, "digits-edge") or {}).get("STATUS") == "Available"
            and all(requests_per_second(s, n) > 0 for n in ("digits", "digits-edge"))
        ),
        300,
    )
    assert (table_row(deck, "digits") or {}).get("VER") == "1"  # version 2 is left to roll out
    terminal.press("q")
    after = terminal.wait_for("the demo to exit", lambda s: EXITED in s, 60)
    assert terminal.exit_code() == 0, after
    assert "demo: opening the deck" in after
    assert terminal.flag("alternate_on") == "0"
    poll_until("the traffic loop stopped", lambda: sending_to(demo_user.gateway) == [], 30)


def test_without_a_terminal_the_demo_prints_the_fleet_and_a_curl(demo_user: DemoUser) -> None:
    done = subprocess.run(
        [DEMO],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=demo_user.env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"model digits versions 1 2\b", done.stderr), done.stderr[-3000:]
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines()[1:3]}
    assert set(rows) == {"digits", "digits-edge"}, done.stdout
    assert f"http://{demo_user.gateway}/models/digits/v1/models/digits:predict" in done.stdout
