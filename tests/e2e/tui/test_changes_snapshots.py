"""What the Changes screen looks like at 80x24 (over SSH, in tmux), on the fixed fleet's
revisions and a warning event, time frozen; the behaviour is tested on real runtimes
(tests/e2e/tui/test_changes_local.py, tests/integration/console/test_changes_cluster.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.profile import StoreSettings, load_profile
from console.tui.app import DeckApp
from console.tui.screens.changes import ChangesScreen
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.fixed_fleet import NOW, FixedFleet, fixed_deployments
from tests.e2e.tui.test_overview_snapshots import FixedMetrics


@pytest.fixture
def changes_deck(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeckApp:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # no journals of the machine's
    (tmp_path / "store").mkdir()
    profile = dataclasses.replace(
        load_profile("kwok"), store=StoreSettings(str(tmp_path / "store"))
    )
    return DeckApp(
        FixedFleet(fixed_deployments()),
        profile,
        context="kwok-admin",
        user="alice",
        metrics=FixedMetrics(),
        clock=lambda: NOW,
        live=False,
        audit_path=tmp_path / "audit.jsonl",
    )


async def open_changes(pilot: Pilot[Any]) -> None:
    app: DeckApp = pilot.app  # type: ignore[assignment]
    await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
    await pilot.press("c")
    screen = app.screen
    assert isinstance(screen, ChangesScreen)
    await wait_for(pilot, "the changes read", lambda: screen.loader.loads > 0)
    await pilot.press("j")  # the second row: one with numbers before and after
    await pilot.pause()


def test_changes_at_80x24(snap_compare: Any, changes_deck: DeckApp) -> None:
    assert snap_compare(changes_deck, terminal_size=(80, 24), run_before=open_changes)
