"""What the deck shows of hostile text: an event, a change-cause on the real KWOK cluster and a
hostile manifest in a shared store are shown escaped and literally (a '[' stays a '['), never
sent to the terminal or parsed as markup; one bad version does not hide the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widget import Widget
from textual.widgets import DataTable, Static

from console.backends.kubernetes.backend import KubernetesBackend
from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.models import ModelsScreen
from tests.e2e.tui.deck_pilot import KwokFleet, kwok_fleet_fixture, run, shown_names, wait_for
from tests.e2e.tui.screen_host import ScreenHost
from tests.e2e.tui.test_models_screen import kwok_backend
from tests.infra.k8s_fixtures import K8sCluster
from tests.integration.console.test_models_unreadable import (
    HOSTILE_PATH,
    store_with_a_hostile_version,
)

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for

HOSTILE = "\x1b[2J\n[b]markup[/b]"
ESCAPED = "\\x1b[2J\\n[b]markup[/b]"  # what the user must see, character for character


def on_screen(widget: Widget) -> str:
    """The lines the widget draws, as the terminal would get them (text only)."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def cells(table: DataTable[Any]) -> list[list[Any]]:
    return [list(table.get_row_at(i)) for i in range(table.row_count)]


def add_hostile_event_and_change_cause(fleet: KwokFleet, name: str) -> None:
    """What anyone who may write Events or annotate the Deployment can leave for the deck."""
    from kubernetes import client

    api_client = fleet.cluster.api_client()
    now = datetime.now(UTC)
    # The client takes a plain dict as the body; its stubs name only the model class.
    event: Any = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.hostile-{uuid.uuid4().hex[:8]}"},
        "involvedObject": {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
            "namespace": fleet.namespace,
        },
        "reason": "Hostile[b]x[/b]",
        "message": HOSTILE,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "source": {"component": "someone-else"},
    }
    client.CoreV1Api(api_client).create_namespaced_event(fleet.namespace, event)
    client.AppsV1Api(api_client).patch_namespaced_deployment(
        name,
        fleet.namespace,
        {"metadata": {"annotations": {"kubernetes.io/change-cause": HOSTILE}}},
    )


def test_the_deployment_screen_shows_a_hostile_event_and_change_cause_escaped_and_literally(
    kwok_fleet: KwokFleet,
) -> None:
    kwok_fleet.deploy("digits-a")
    add_hostile_event_and_change_cause(kwok_fleet, "digits-a")

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_for(pilot, "one row", lambda: shown_names(app) == ["digits-a"])
            await pilot.press("d")
            screen = app.screen
            assert isinstance(screen, DeploymentScreen)
            revisions: DataTable[Any] = screen.query_one("#detail-revisions", DataTable)
            events: DataTable[Any] = screen.query_one("#detail-events", DataTable)

            def hostile_event() -> list[Any] | None:
                return next((r for r in cells(events) if r[2].plain.startswith("Hostile")), None)

            await wait_for(pilot, "the hostile event", hostile_event)
            await wait_for(
                pilot,
                "the hostile change-cause",
                lambda: any(str(r[4]) == ESCAPED for r in cells(revisions)),
            )
            event = hostile_event()
            assert event is not None
            # Each cell is Text, as typed: no style from the '[b]' in it, nothing unescaped.
            assert isinstance(event[5], Text)
            assert event[5].plain == ESCAPED
            assert event[5].spans == []
            assert event[2].plain == "Hostile[b]x[/b]"

            await pilot.pause()
            shown = on_screen(revisions)
            assert ESCAPED in shown
            assert "\x1b" not in shown
            await pilot.press("3")  # the Events tab
            await pilot.pause()
            shown = on_screen(events)
            assert ESCAPED in shown
            assert "Hostile[b]x[/b]" in shown
            assert "\x1b" not in shown

            summary = screen.query_one("#detail-summary", Static)
            assert f"{kwok_fleet.namespace}/digits-a" in on_screen(summary)

    run(scenario)


def test_the_models_screen_lists_a_hostile_version_as_unreadable_and_the_good_one_as_before(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> None:
    store = store_with_a_hostile_version(tmp_path / "store", tmp_path)
    backend: KubernetesBackend = kwok_backend(k8s_cluster, k8s_namespace, store)
    assert backend.start()

    async def scenario() -> None:
        app = ScreenHost(lambda: ModelsScreen(backend, backend.profile))
        async with app.run_test(size=(160, 50)) as pilot:
            screen = app.screen
            assert isinstance(screen, ModelsScreen)
            table: DataTable[Any] = screen.query_one(DataTable)
            await wait_for(pilot, "two versions", lambda: table.row_count == 2)
            hostile, good = ([str(c) for c in row] for row in cells(table))  # newest first
            assert hostile[:2] == ["digits", "2"]
            assert hostile[6].startswith("unreadable: ")
            assert good[:2] == ["digits", "1"]
            assert good[2:] == ["-", "-", "21 B", "2026-11-26 00:00", "r1", "-", "tflite", "-"]

            await pilot.pause()
            detail = on_screen(screen.query_one("#models-detail", Static))
            assert "digits v2 · unreadable, not offered for deploy:" in detail
            header = on_screen(screen.query_one("#models-header", Static))
            assert "1 model, 2 versions (1 unreadable)" in header
            assert "\x1b" not in on_screen(table)
            assert HOSTILE_PATH in screen.rows[0].error

            await pilot.press("d")  # not offered: says why, opens nothing
            assert app.screen is screen
            assert "unreadable, not offered" in on_screen(screen.query_one("#models-notice"))

    try:
        run(scenario)
    finally:
        backend.close()
