"""Actions from the deck on the real KWOK cluster: marked rows (or the cursor row) scaled,
restarted, deleted through the confirmation dialog, with a dry-run preview, a typed count for
large batches, per-target results and an audit line per target; read-only and RBAC remove the
actions a user may not take and say why."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from console.audit import read_audit
from console.tui.app import DeckApp
from console.tui.screens.action_dialog import ActionDialog
from tests.e2e.tui.deck_pilot import (
    KwokFleet,
    kwok_fleet_fixture,
    notices,
    run,
    shown_names,
    type_text,
    wait_for,
)
from tests.infra.k8s_fixtures import poll_until

kwok_fleet = kwok_fleet_fixture  # the fixture, by the name the tests ask for


def dialog(app: DeckApp) -> ActionDialog:
    assert isinstance(app.screen, ActionDialog), f"expected the action dialog, got {app.screen}"
    return app.screen


def desired(fleet: KwokFleet, name: str) -> int | None:
    row = fleet.backend.deployment(fleet.namespace, name)
    return row.desired if row else None


def replicas_box(app: DeckApp) -> Input:
    return dialog(app).query_one("#replicas", Input)


def results_text(app: DeckApp) -> str:
    log: Any = dialog(app).query_one("#action-results")
    return "\n".join(log.lines)


def test_scale_of_the_marked_rows_runs_on_each_and_reports_per_target(
    kwok_fleet: KwokFleet,
) -> None:
    kwok_fleet.deploy("digits-a", "digits-b", "iris-a")

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "three rows", lambda: len(shown_names(app)) == 3)
            await pilot.press("space", "space")  # digits-a, digits-b
            await pilot.press("s")
            box = dialog(app)
            assert [d.name for d in box.targets] == ["digits-a", "digits-b"]
            assert replicas_box(app).value == "1"  # the current count, suggested
            replicas_box(app).value = ""
            await type_text(pilot, "3")
            await pilot.press("enter")
            await wait_for(pilot, "the batch to finish", lambda: box.finished)
            assert [r.ok for r in box.results] == [True, True], results_text(app)
            text = results_text(app)
            assert f"ok   {kwok_fleet.namespace}/digits-a" in text
            assert "done: 2 ok, 0 failed" in text
            await pilot.press("escape")  # close
            assert not isinstance(app.screen, ActionDialog)

    run(scenario)
    poll_until("both scaled in the cache", lambda: desired(kwok_fleet, "digits-b") == 3)
    assert desired(kwok_fleet, "digits-a") == 3
    assert desired(kwok_fleet, "iris-a") == 1  # not marked: untouched
    lines = [e for e in read_audit(path=kwok_fleet.audit_path) if e.action == "scale"]
    assert sorted(t for e in lines for t in e.targets) == [
        f"{kwok_fleet.namespace}/digits-a",
        f"{kwok_fleet.namespace}/digits-b",
    ]
    assert all(e.user == "alice" and e.parameters["replicas"] == 3 for e in lines)


def test_a_dry_run_previews_on_the_server_and_changes_nothing(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a")

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "one row", lambda: shown_names(app) == ["digits-a"])
            await pilot.press("s")
            box = dialog(app)
            replicas_box(app).value = "5"
            await pilot.press("ctrl+t")
            await wait_for(
                pilot, "the dry run to finish", lambda: "dry run done" in results_text(app)
            )
            assert "dry run done: 1 ok, 0 failed; nothing was changed" in results_text(app)
            assert not box.finished  # the real run is still on offer
            await pilot.press("escape")

    run(scenario)
    assert desired(kwok_fleet, "digits-a") == 1
    entries = read_audit(path=kwok_fleet.audit_path)
    assert [(e.action, e.dry_run) for e in entries] == [("scale", True)]


def test_restart_of_the_cursor_row_when_nothing_is_marked(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a", "digits-b")

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "two rows", lambda: len(shown_names(app)) == 2)
            await pilot.press("j", "r")
            box = dialog(app)
            assert [d.name for d in box.targets] == ["digits-b"]
            await pilot.click("#run")
            await wait_for(pilot, "the restart", lambda: box.finished)
            assert box.results[0].ok, box.results[0].message

    run(scenario)
    annotations = kwok_fleet.cluster.kubectl(
        "get",
        "deployment",
        "digits-b",
        "-n",
        kwok_fleet.namespace,
        "-o",
        "jsonpath={.spec.template.metadata.annotations}",
    )
    assert "restartedAt" in annotations


def test_more_than_ten_targets_need_the_count_typed(kwok_fleet: KwokFleet) -> None:
    names = [f"m-{i:02d}" for i in range(11)]
    kwok_fleet.deploy(*names)

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "eleven rows", lambda: len(shown_names(app)) == 11)
            await pilot.press("A", "p")  # mark all, pause
            box = dialog(app)
            await pilot.click("#run")
            problem: Any = box.query_one("#action-problem")
            assert "type 11" in str(problem.render())
            assert not box.running  # nothing was sent
            assert not box.finished
            box.query_one("#confirm-count").focus()
            await type_text(pilot, "11")
            await pilot.press("enter")
            await wait_for(pilot, "the batch", lambda: box.finished, within=120)
            assert sum(r.ok for r in box.results) == 11

    run(scenario)
    paused = kwok_fleet.cluster.kubectl(
        "get", "deployments", "-n", kwok_fleet.namespace, "-o", "jsonpath={.items[*].spec.paused}"
    )
    assert paused.split() == ["true"] * 11


def test_ctrl_d_deletes_only_after_confirmation(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a", "digits-b")

    async def scenario() -> None:
        app = kwok_fleet.deck()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "two rows", lambda: len(shown_names(app)) == 2)
            await pilot.press("ctrl+d")
            assert dialog(app).action == "delete"
            await pilot.press("escape")  # cancelled: nothing sent
            assert shown_names(app) == ["digits-a", "digits-b"]
            await pilot.press("ctrl+d")
            await pilot.click("#run")
            await wait_for(pilot, "the delete", lambda: dialog(app).finished)
            await pilot.press("escape")
            await wait_for(pilot, "digits-a gone", lambda: shown_names(app) == ["digits-b"])

    run(scenario)


def test_read_only_offers_no_action_and_says_why(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a")

    async def scenario() -> None:
        app = kwok_fleet.deck(read_only=True)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, "one row", lambda: shown_names(app) == ["digits-a"])
            offered = set(app.screen.active_bindings)
            assert offered.isdisjoint({"u", "b", "r", "s", "p", "P", "ctrl+d"})
            await pilot.press("s")
            assert not isinstance(app.screen, ActionDialog)
            assert any("read-only: profile 'kwok'" in n for n in notices(app))
            assert app.fleet.query_one("#fleet-status").info.read_only  # type: ignore[attr-defined]
            palette = {title: why for title, why, _ in app.fleet.palette_commands()}
            assert palette["Scale (marked rows or cursor row)"].startswith("not offered: read-only")
            await pilot.press("question_mark")
            unavailable = dict(app.screen.unavailable)  # type: ignore[attr-defined]
            assert unavailable["s"].startswith("scale: read-only: profile 'kwok'")

    run(scenario)
    assert desired(kwok_fleet, "digits-a") == 1


def test_a_viewer_is_not_offered_what_rbac_forbids(kwok_fleet: KwokFleet) -> None:
    kwok_fleet.deploy("digits-a")
    viewer = kwok_fleet.backend_as("viewer")
    try:

        async def scenario() -> None:
            app = kwok_fleet.deck(user_backend=viewer)
            async with app.run_test(size=(80, 24)) as pilot:
                await wait_for(pilot, "one row", lambda: shown_names(app) == ["digits-a"])
                await wait_for(
                    pilot,
                    "the access review",
                    lambda: kwok_fleet.namespace in app.fleet.deck.permissions.checked,
                )
                await pilot.pause()
                offered = set(app.screen.active_bindings)
                assert offered.isdisjoint({"u", "b", "r", "s", "p", "P", "ctrl+d"})
                assert {"slash", "space", "d", "l"} <= offered  # reading stays
                await pilot.press("r")
                assert not isinstance(app.screen, ActionDialog)
                assert any(
                    "forbidden: user 'alice' may not patch deployments" in n for n in notices(app)
                )
                status: Any = app.fleet.query_one("#fleet-status")
                assert "RBAC: no rollout" in status.info.denied

        run(scenario)
    finally:
        viewer.close()
