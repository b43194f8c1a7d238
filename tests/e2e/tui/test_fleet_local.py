"""The deck on the real local runtime (an agent supervising real predictor processes): the
fleet shows its deployments; from the keyboard, roll one out to version 2 and back, and
restart the marked ones; the Deployment screen shows the new revision."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from console.backends.local import LocalBackend
from console.model import DeploymentState, DeployRequest
from console.tui.app import DeckApp
from console.tui.screens.action_dialog import ActionDialog
from console.tui.screens.deployment import DeploymentScreen
from console.views.fleet_rows import COLUMN_KEYS
from tests.e2e.tui.deck_pilot import run, shown_names, wait_for
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local import fixtures

digits_store = fixtures.digits_store  # the session's trained store, versions 1 and 2


@pytest.fixture
def local_fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalBackend]:
    with fixtures.open_local_fleet(request, tmp_path, "alice") as (backend, namespace):
        assert namespace == "contract"
        for name in ("digits-a", "digits-b"):
            result = backend.deploy(DeployRequest(name, "digits", 1, namespace, 1))
            assert result.ok, result.message
        for name in ("digits-a", "digits-b"):
            poll_until(f"{name} Available", partial(available, backend, name), 120)
        yield backend


def available(backend: LocalBackend, name: str, version: str = "1") -> bool:
    row = backend.deployment("contract", name)
    return row is not None and row.state is DeploymentState.AVAILABLE and row.version == version


def version_shown(app: DeckApp, name: str) -> str:
    return next(r.deployment.version for r in app.fleet.rows if r.deployment.name == name)


async def act(pilot: Any, app: DeckApp, key: str, value: str | None = None) -> ActionDialog:
    await pilot.press(key)
    box = app.screen
    assert isinstance(box, ActionDialog)
    if value is not None:
        box.query(Input).first().value = value
    await pilot.click("#run")
    await wait_for(pilot, f"{box.action} to finish", lambda: box.finished, within=120)
    assert all(r.ok for r in box.results), [r.message for r in box.results]
    await pilot.press("escape")
    return box


def test_roll_out_to_version_2_and_back_from_the_deck(
    local_fleet: LocalBackend, tmp_path: Path
) -> None:
    async def scenario() -> None:
        app = DeckApp(local_fleet, local_fleet.profile, user="alice", audit_path=tmp_path / "a")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "two rows", lambda: shown_names(app) == ["digits-a", "digits-b"])
            assert app.fleet.table.view[0].cells[COLUMN_KEYS.index("ready")] == "1/1"
            await act(pilot, app, "u", "2")  # rollout digits-a (the cursor row) to version 2
            await wait_for(pilot, "version 2 shown", lambda: version_shown(app, "digits-a") == "2")
            await act(pilot, app, "b")  # and back
            await wait_for(pilot, "version 1 shown", lambda: version_shown(app, "digits-a") == "1")
            assert version_shown(app, "digits-b") == "1"  # the other one untouched

            await pilot.press("d")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            await wait_for(
                pilot,
                "the new revisions",
                lambda: screen.detail is not None and len(screen.detail.revisions) >= 2,
            )
            assert screen.detail is not None
            revisions = sorted(screen.detail.revisions, key=lambda r: r.number)
            assert [r.model_version for r in revisions][-2:] == ["2", "1"]
            await pilot.press("escape")

            await pilot.press("A")  # mark both, restart them
            await act(pilot, app, "r")

    run(scenario)
    for name in ("digits-a", "digits-b"):
        poll_until(
            f"{name} Available after the restart", partial(available, local_fleet, name), 120
        )
