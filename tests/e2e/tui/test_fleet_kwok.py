"""The Fleet screen on the real KWOK cluster: every deployment as a row, live; filter, sort,
mark; a change arriving while the cursor is on a row leaves the cursor, marks and sort alone."""

from __future__ import annotations

from functools import partial
from typing import Any

from kubernetes import client
from textual.widgets import OptionList

from console.views.fleet_rows import COLUMN_KEYS
from tests.e2e.tui.deck_pilot import (
    KwokFleet,
    cursor_name,
    kwok_fleet_fixture,
    run,
    shown_names,
    type_text,
    wait_for,
)
from tests.infra.k8s_fixtures import poll_until

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for
NAMES = ["digits-a", "digits-b", "iris-a", "iris-b"]


def deploy_four(fleet: KwokFleet) -> None:
    fleet.deploy("digits-a", "digits-b")
    fleet.deploy("iris-a", "iris-b", model="iris")


def test_the_fleet_shows_every_deployment_with_its_model_version_and_readiness(
    kwok_fleet: KwokFleet,
) -> None:
    deploy_four(kwok_fleet)
    for name in NAMES:
        poll_until(f"{name} Available", partial(kwok_fleet.available, name), 120)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            assert shown_names(app) == NAMES
            row = app.fleet.table.view[2]
            shown = dict(zip(COLUMN_KEYS, row.cells, strict=True))
            assert [shown[k] for k in ("name", "namespace", "model", "version", "ready")] == [
                "iris-a",
                kwok_fleet.namespace,
                "iris",
                "1",
                "1/1",
            ]
            assert shown["status"] == "Available"
            assert shown["cluster"] == ""  # one cluster: its rows name none
            assert row.cells[-4:] == ("-", "-", "-", "-")  # metrics arrive with their issue
            status = app.fleet.query_one("#fleet-status").info  # type: ignore[attr-defined]
            assert status.counts.total == 4
            assert status.connection.live

    run(scenario)


def test_slash_filters_by_substring_regex_and_label_and_esc_clears(kwok_fleet: KwokFleet) -> None:
    deploy_four(kwok_fleet)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            await pilot.press("slash")
            await type_text(pilot, "iris")
            assert shown_names(app) == ["iris-a", "iris-b"]
            await pilot.press(*["backspace"] * 4)
            await type_text(pilot, "^digits-b$")
            assert shown_names(app) == ["digits-b"]
            await pilot.press(*["backspace"] * 10)
            await type_text(pilot, "fleetdeck.io/model=iris")
            assert shown_names(app) == ["iris-a", "iris-b"]
            await pilot.press("enter")  # keep the filter, back to the table
            assert app.fleet.table.has_focus
            await pilot.press("escape")
            assert shown_names(app) == NAMES

    run(scenario)


def test_sort_by_any_column_and_reverse(kwok_fleet: KwokFleet) -> None:
    deploy_four(kwok_fleet)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            await pilot.press("O")  # reverse the name order
            assert shown_names(app) == list(reversed(NAMES))
            app.fleet.sort_by("model")  # what the palette's "Sort by model" does
            await pilot.pause()
            assert shown_names(app) == ["digits-a", "digits-b", "iris-a", "iris-b"]
            app.fleet.sort_by("model")  # the same column again: reversed
            await pilot.pause()
            assert [r.deployment.model for r in app.fleet.table.view] == ["iris"] * 2 + [
                "digits"
            ] * 2
            await pilot.press("o")  # the next column
            assert app.fleet.order.column == "version"
            await pilot.press("ctrl+p")  # the command palette has every sort (and action)
            await type_text(pilot, "sort by age")
            await wait_for(
                pilot, "the palette's match", lambda: app.screen.query_one(OptionList).option_count
            )
            await pilot.press("enter")
            await wait_for(pilot, "sorted by age", lambda: app.fleet.order.column == "age")

    run(scenario)


def test_space_marks_a_key_marks_all_filtered_another_clears(kwok_fleet: KwokFleet) -> None:
    deploy_four(kwok_fleet)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            await pilot.press("space")  # marks digits-a, moves down
            assert cursor_name(app) == "digits-b"
            assert {name for _, _, name in app.fleet.marks} == {"digits-a"}
            # A mark reads without colour too (NO_COLOR, a monochrome terminal): a "*" gutter.
            table = app.fleet.table
            assert table.render_line(1).text.startswith("* digits-a")
            assert table.render_line(2).text.startswith("  digits-b")
            await pilot.press("y")  # copy the target names (OSC 52 over SSH)
            assert app.clipboard == f"{kwok_fleet.namespace}/digits-a"
            await pilot.press("slash")
            await type_text(pilot, "iris")
            await pilot.press("enter", "A")
            assert {name for _, _, name in app.fleet.marks} == {"digits-a", "iris-a", "iris-b"}
            assert [r.deployment.name for r in app.fleet.targets()] == [
                "iris-a",
                "iris-b",
                "digits-a",
            ]
            await pilot.press("C")
            assert app.fleet.marks == set()

    run(scenario)


def test_a_live_update_keeps_the_cursor_marks_filter_and_sort(kwok_fleet: KwokFleet) -> None:
    deploy_four(kwok_fleet)
    apps: Any = client.AppsV1Api(kwok_fleet.cluster.api_client())

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            await pilot.press("O")  # reversed: the cursor stays on its row, now the last
            assert cursor_name(app) == "digits-a"
            await pilot.press("g", "j", "space")  # to the top, down, mark iris-a (moves on)
            assert cursor_name(app) == "digits-b"
            loads = app.fleet.loads
            # Someone else scales iris-b to 3: the row changes under the user's eyes.
            apps.patch_namespaced_deployment_scale(
                "iris-b", kwok_fleet.namespace, {"spec": {"replicas": 3}}
            )

            def iris_b_desired() -> int:
                return next(
                    r.deployment.desired for r in app.fleet.rows if r.deployment.name == "iris-b"
                )

            await wait_for(pilot, "iris-b desired 3", lambda: iris_b_desired() == 3)
            assert app.fleet.loads > loads
            assert cursor_name(app) == "digits-b"
            assert {name for _, _, name in app.fleet.marks} == {"iris-a"}
            assert shown_names(app) == list(reversed(NAMES))

    run(scenario)


def test_a_deleted_deployment_leaves_the_table_and_its_mark(kwok_fleet: KwokFleet) -> None:
    deploy_four(kwok_fleet)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "four rows", lambda: len(shown_names(app)) == 4)
            await pilot.press("space")  # mark digits-a
            result = kwok_fleet.backend.delete(kwok_fleet.namespace, "digits-a")
            assert result.ok, result.message
            await wait_for(pilot, "digits-a gone", lambda: "digits-a" not in shown_names(app))
            assert app.fleet.marks == set()
            assert cursor_name(app) == "digits-b"

    run(scenario)
