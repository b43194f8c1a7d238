"""The deck keeps the user's choices: keys remapped in keymap.toml (by binding id) and the
theme last chosen, in the user's XDG folders (temporary ones here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from console.tui import preferences
from console.tui.app import DeckApp, deck_binding_ids
from tests.e2e.tui.deck_pilot import wait_for
from tests.e2e.tui.test_fleet_snapshots import fixed_deck


@pytest.fixture
def user_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    (tmp_path / "config" / "fleetdeck").mkdir(parents=True)
    return tmp_path


def remembering_deck() -> DeckApp:
    return fixed_deck(remember=True)


def test_a_key_remapped_in_keymap_toml_acts_and_the_old_key_does_not(
    user_folders: Path,
) -> None:
    async def scenario() -> None:
        preferences.keymap_path().write_text('"fleet.filter" = "f"\n', encoding="utf-8")
        app = remembering_deck()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
            box = app.fleet.query_one("#fleet-filter", Input)
            await pilot.press("slash")
            await pilot.pause()
            assert not box.display  # `/` is no longer the filter's key
            await pilot.press("f")
            await wait_for(pilot, "the filter box", lambda: bool(box.display))

    asyncio.run(scenario())


def test_a_misspelt_binding_id_is_said_and_the_defaults_stay(user_folders: Path) -> None:
    async def scenario() -> None:
        preferences.keymap_path().write_text('"fleet.filtr" = "f"\n', encoding="utf-8")
        app = remembering_deck()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, "the fleet", lambda: app.fleet.loads > 0)
            said = [n.message for n in app._notifications]
            assert any("fleet.filtr: no such binding id" in m for m in said), said
            await pilot.press("slash")
            box = app.fleet.query_one("#fleet-filter", Input)
            await wait_for(pilot, "the filter box", lambda: bool(box.display))

    asyncio.run(scenario())


def test_the_chosen_theme_is_kept_for_the_next_run(user_folders: Path) -> None:
    async def scenario() -> None:
        first = remembering_deck()
        async with first.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, "the fleet", lambda: first.fleet.loads > 0)
            assert first.theme != "nord"
            first.theme = "nord"
            await wait_for(pilot, "the theme kept", lambda: preferences.load_theme() == "nord")
        second = remembering_deck()
        async with second.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, "the fleet", lambda: second.fleet.loads > 0)
            assert second.theme == "nord"

    asyncio.run(scenario())


def test_every_binding_of_the_deck_has_an_id_to_remap() -> None:
    ids = deck_binding_ids()
    assert {"fleet.filter", "action.rollout", "fleet.toggle_wide", "deck.help"} <= ids
