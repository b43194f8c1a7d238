"""What the Models screen looks like at 80×24 and 160×50 over a real local store with four
versions (two of them serving), and the rollout picker."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.profile import load_profile
from console.tui.screens.models import ModelsScreen
from serving.manifest import FileEntry, Manifest
from serving.store import ModelStore
from tests.e2e.tui.fixed_jobs import FixedTraining
from tests.e2e.tui.screen_host import ScreenHost, wait_for
from tests.support.versions import describe, make_version


@pytest.fixture(autouse=True)
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Four digits versions in ./store (a relative root, so the header is the same every run)."""
    monkeypatch.chdir(tmp_path)
    store = ModelStore("store")
    for number, accuracy in enumerate((0.9311, 0.9402, 0.9512, 0.9634), start=1):  # v1..v4

        def described(
            version: int, files: Mapping[str, FileEntry], accuracy: float = accuracy
        ) -> Manifest:
            return dataclasses.replace(
                describe(version, files),
                metrics={"accuracy": accuracy, "int8_accuracy_delta": -0.0021},
                training={"run_id": f"train-digits-{version:05d}", "data": "digits", "epochs": 5},
            )

        store.publish("digits", make_version(tmp_path / f"v{number}"), described)


def models_app() -> ScreenHost:
    kwok = load_profile("kwok")
    profile = dataclasses.replace(kwok, store=dataclasses.replace(kwok.store, root="store"))
    return ScreenHost(lambda: ModelsScreen(FixedTraining(), profile))


async def loaded(pilot: Pilot[Any]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, ModelsScreen)
    await wait_for(pilot, "the versions", lambda: len(screen.rows) == 4)
    await wait_for(pilot, "the permission check", lambda: screen.checked)
    await pilot.pause()


async def picker(pilot: Pilot[Any]) -> None:
    await loaded(pilot)
    await pilot.press("r")
    await pilot.pause()


def test_models_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(models_app(), terminal_size=(80, 24), run_before=loaded)


def test_models_at_160x50(snap_compare: Any) -> None:
    assert snap_compare(models_app(), terminal_size=(160, 50), run_before=loaded)


def test_rollout_picker_at_80x24(snap_compare: Any) -> None:
    assert snap_compare(models_app(), terminal_size=(80, 24), run_before=picker)
