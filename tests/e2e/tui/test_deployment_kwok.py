"""The Deployment screen on the real KWOK cluster: revisions with change-cause and model version,
pods with phase and readiness, events, conditions; live as the deployment changes; esc back to
the fleet with the cursor where it was; the deck's `:` commands and help."""

from __future__ import annotations

from functools import partial
from typing import Any

from textual.widgets import DataTable

from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.logs import LogsScreen
from console.tui.screens.models import ModelsScreen
from console.tui.screens.training import TrainingScreen
from tests.e2e.tui.deck_pilot import (
    KwokFleet,
    cursor_name,
    kwok_fleet_fixture,
    notices,
    run,
    shown_names,
    type_text,
    wait_for,
)
from tests.infra.k8s_fixtures import poll_until

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for


def table_rows(screen: DeploymentScreen, table: str) -> list[list[str]]:
    widget: DataTable[Any] = screen.query_one(f"#detail-{table}", DataTable)
    return [[str(cell) for cell in widget.get_row_at(i)] for i in range(widget.row_count)]


def current(app: Any) -> Any:
    """The screen on top (read afresh each time: keys change it)."""
    return app.screen


def test_detail_shows_revisions_pods_events_and_conditions_live(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a", "digits-b")
    poll_until("digits-b Available", partial(kwok_fleet.available, "digits-b"), 120)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, "two rows", lambda: len(shown_names(app)) == 2)
            await pilot.press("j", "d")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            await wait_for(pilot, "pods", lambda: table_rows(screen, "pods"))
            revisions = table_rows(screen, "revisions")
            assert revisions[0][:3] == ["1", "digits", "1"]
            assert "deploy digits" in revisions[0][4]  # the change-cause fleetdeck wrote
            pod = table_rows(screen, "pods")[0]
            assert pod[0].startswith("digits-b-")
            assert pod[1:3] == ["Running", "yes"]
            assert table_rows(screen, "events")  # the ReplicaSet's scaling at least
            conditions = {row[0]: row[1] for row in table_rows(screen, "conditions")}
            assert conditions.get("Available") == "True"

            # A rollout by someone else shows up as a new revision without reopening.
            result = kwok_fleet.backend.rollout(kwok_fleet.namespace, "digits-b", 2, verify=False)
            assert result.ok, result.message
            await wait_for(pilot, "revision 2", lambda: len(table_rows(screen, "revisions")) == 2)
            newest = table_rows(screen, "revisions")[0]
            assert newest[:3] == ["2", "digits", "2"]
            assert "rollout" in newest[4]

            await pilot.press("escape")
            assert isinstance(app.screen, FleetScreen)
            assert cursor_name(app) == "digits-b"

    run(scenario)


def test_colon_commands_jump_between_screens(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a")
    # A shared cluster's controllers can take a while to make the pod: wait generously.
    poll_until(
        "a pod", lambda: kwok_fleet.backend.pods(kwok_fleet.namespace, "digits-a") or None, 180
    )

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "one row", lambda: shown_names(app) == ["digits-a"])
            await pilot.press("colon")
            await type_text(pilot, "logs digits-a")
            await pilot.press("enter")
            await wait_for(
                pilot,
                f"the logs screen ({notices(app)})",
                lambda: isinstance(current(app), LogsScreen),
            )
            await pilot.press("colon")
            await type_text(pilot, "jobs")
            await pilot.press("enter")
            assert isinstance(current(app), TrainingScreen)
            await pilot.press("colon")
            await type_text(pilot, "models")
            await pilot.press("enter")
            assert isinstance(current(app), ModelsScreen)
            await pilot.press("colon")
            await type_text(pilot, "deploy")
            await pilot.press("enter")
            assert isinstance(current(app), FleetScreen)
            await pilot.press("colon")
            await type_text(pilot, "nonsense")
            await pilot.press("enter")
            assert any("unknown command 'nonsense'" in n for n in notices(app))
            await pilot.press("question_mark")
            assert isinstance(current(app), HelpScreen)
            keys = dict(current(app).keys)
            assert keys["/"] == "Filter"
            assert keys["^d"] == "Delete"
            await pilot.press("escape")
            assert isinstance(current(app), FleetScreen)
            await pilot.press("escape")  # home: esc does not leave the fleet
            assert isinstance(current(app), FleetScreen)

    run(scenario)
