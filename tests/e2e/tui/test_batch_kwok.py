"""Rollouts in waves from the deck on the real KWOK cluster: the action dialog's plan fields,
the Batch screen (waves, per-target state, event log) with halt and resume, and ``:batches``.
The model store is a real local store holding versions 1 and 2 of ``digits``; journals and the
audit log live in the test's own folder."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Input

from console.audit import read_audit
from console.backends.kubernetes.backend import KubernetesBackend
from console.batch.journal import BatchState, Journal, list_journals
from console.batch.plan import make_plan, settings_from
from console.batch.runner import ActionSpec
from console.model import DeploymentState
from console.profile import load_profile
from console.tui.app import DeckApp
from console.tui.screens.action_dialog import ActionDialog
from console.tui.screens.batch import BatchListScreen, BatchScreen, ConfirmAbort
from serving.manifest import FileEntry, Manifest
from serving.store import ModelStore
from tests.e2e.tui.deck_pilot import KwokFleet, notices, run, shown_names, wait_for
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.batch.conftest import Fleetdeck
from tests.support.versions import describe, make_version

NAMES = [f"m-{i:02d}" for i in range(12)]
SIZE = (100, 40)


def publish(store: ModelStore, folder: Path) -> int:
    def described(version: int, files: Mapping[str, FileEntry]) -> Manifest:
        return describe(version, files)

    return store.publish("digits", make_version(folder), described).version


@pytest.fixture(name="fleet")
def fleet_fixture(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KwokFleet]:
    """Twelve deployments of digits v1, a store with v1 and v2, journals in tmp_path."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    store = ModelStore(str(tmp_path / "store"))
    assert [publish(store, tmp_path / "v1"), publish(store, tmp_path / "v2")] == [1, 2]
    kwok = load_profile("kwok")
    profile = dataclasses.replace(kwok, store=dataclasses.replace(kwok.store, root=store.root))
    backend = KubernetesBackend(
        profile, api_client=k8s_cluster.api_client(), namespaces=[k8s_namespace], user="alice"
    )
    assert backend.start()
    try:
        fleet = KwokFleet(k8s_cluster, k8s_namespace, backend, tmp_path / "audit.jsonl")
        fleet.deploy(*NAMES)
        yield fleet
    finally:
        backend.cache.stop()


def batch_screen(app: DeckApp) -> BatchScreen | None:
    return app.screen if isinstance(app.screen, BatchScreen) else None


def target_states(screen: BatchScreen) -> dict[str, str]:
    """The target → state column of the Batch screen's table, as shown."""
    table: DataTable[Any] = screen.query_one("#batch-targets", DataTable)
    return {
        str(table.get_row_at(i)[0]): str(table.get_row_at(i)[2]) for i in range(table.row_count)
    }


def shown(screen: BatchScreen, widget: str) -> str:
    static: Any = screen.query_one(widget)
    return str(static.render())


async def open_plan_dialog(app: DeckApp, pilot: Any, **fields: str) -> ActionDialog:
    """Mark every row, press u (rollout) and fill the dialog; the caller presses enter."""
    await wait_for(pilot, "twelve rows", lambda: len(shown_names(app)) == len(NAMES))
    await pilot.press("A", "u")
    assert isinstance(app.screen, ActionDialog), f"expected the action dialog, got {app.screen}"
    box = app.screen
    box.query_one("#version", Input).value = "2"
    for name, value in fields.items():
        box.query_one(f"#plan-{name}", Input).value = value
    box.query_one("#confirm-count", Input).value = str(len(NAMES))
    box.query_one("#version", Input).focus()
    return box


def waves(screen: BatchScreen) -> str:
    return shown(screen, "#batch-waves")


def halted(screen: BatchScreen) -> bool:
    state = screen.state
    return not screen.batch_run.running and state is not None and state.state is BatchState.HALTED


def listed_batches(app: DeckApp) -> list[list[str]] | None:
    """The rows of ``:batches`` once it shows some."""
    screen = app.screen
    return (screen.shown() or None) if isinstance(screen, BatchListScreen) else None


def versions(fleet: KwokFleet) -> set[str | None]:
    return {row.version for row in fleet.backend.deployments()}


def test_a_rollout_in_waves_from_the_dialog_shows_every_target_ok_and_every_wave_done(
    fleet: KwokFleet,
) -> None:
    journal_id = ""

    async def scenario() -> None:
        nonlocal journal_id
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            box = await open_plan_dialog(app, pilot, waves="1,50%,100%", bake="0")
            assert box.query_one("#plan-waves", Input).value == "1,50%,100%"
            await pilot.press("enter")
            screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
            journal_id = screen.batch_run.id
            await wait_for(
                pilot,
                "the batch to finish",
                lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                within=120,
            )
            await pilot.pause(0.5)  # a last drain
            states = target_states(screen)
            assert states == {f"{fleet.namespace}/{n}": "ok" for n in NAMES}
            waves = shown(screen, "#batch-waves")
            assert "wave 1 (1): done - 1 ok" in waves
            assert "wave 2 (5): done - 5 ok" in waves
            assert "wave 3 (6): done - 6 ok" in waves
            assert f"batch {journal_id}: done" in shown(screen, "#batch-title")
            log: Any = screen.query_one("#batch-log")
            assert any("done: 12 healthy" in line for line in log.lines)

            await pilot.press("escape")  # back to the fleet; then :batches lists it
            assert batch_screen(app) is None
            app.run_command("batches")
            listed = await wait_for(
                pilot,
                "the batch in :batches",
                lambda: listed_batches(app),
            )
            assert listed[0][:5] == [journal_id, "done", "rollout to version 2", "12", "3/3"]
            await pilot.press("enter")  # opens it again, from its journal
            again = await wait_for(pilot, "the Batch screen again", lambda: batch_screen(app))
            assert set(target_states(again).values()) == {"ok"}

    run(scenario)
    poll_until("every deployment on version 2", lambda: versions(fleet) == {"2"})
    assert Journal.open(journal_id).replay().state is BatchState.DONE
    audited = [e for e in read_audit(path=fleet.audit_path) if e.action == "rollout"]
    checked = [e for e in audited if e.dry_run]  # the plan's dry run, as the CLI audits it
    assert sorted(e.targets for e in checked) == sorted((f"{fleet.namespace}/{n}",) for n in NAMES)
    rollouts = [e for e in audited if not e.dry_run]
    assert len(rollouts) == len(NAMES)
    assert all(e.parameters["batch"] == journal_id and e.user == "alice" for e in rollouts)


def test_a_rollback_in_waves_takes_every_target_back_to_its_previous_version(
    fleet: KwokFleet,
) -> None:
    for name in NAMES:
        assert fleet.backend.rollout(fleet.namespace, name, 2).ok
    poll_until("every deployment on version 2", lambda: versions(fleet) == {"2"}, 60)
    poll_until("every rollout done", lambda: all(fleet.available(n) for n in NAMES), 120)
    poll_until(
        "two revisions of each",
        lambda: all(len(fleet.backend.history(fleet.namespace, n)) >= 2 for n in NAMES),
        60,
    )

    async def scenario() -> None:
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, "twelve rows", lambda: len(shown_names(app)) == len(NAMES))
            await pilot.press("A", "b")
            assert isinstance(app.screen, ActionDialog)
            box = app.screen
            box.query_one("#plan-waves", Input).value = "2,100%"
            box.query_one("#plan-bake", Input).value = "0"
            box.query_one("#confirm-count", Input).value = str(len(NAMES))
            box.query_one("#revision", Input).focus()
            problem: Any = box.query_one("#action-problem")
            await pilot.press("enter")  # revision empty: the previous one
            await wait_for(
                pilot,
                "the Batch screen or a refusal",
                lambda: batch_screen(app) or "refused" in str(problem.render()) or None,
            )
            screen = batch_screen(app)
            assert screen is not None, str(problem.render())
            await wait_for(
                pilot,
                "the rollback to finish",
                lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                within=120,
            )
            await pilot.pause(0.5)
            assert set(target_states(screen).values()) == {"ok"}
            assert "wave 1 (2): done - 2 ok" in waves(screen)
            assert "rollback to revision previous" in shown(screen, "#batch-plan")

    run(scenario)
    poll_until("every deployment back on version 1", lambda: versions(fleet) == {"1"})


def test_halt_stops_the_batch_and_resume_finishes_it(fleet: KwokFleet) -> None:
    async def scenario() -> None:
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            await open_plan_dialog(app, pilot, waves="1,50%,100%", bake="3")
            await pilot.press("enter")
            screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
            await wait_for(
                pilot,
                "wave 1 to start",
                lambda: "wave 1 (1): running" in shown(screen, "#batch-waves"),
            )
            await pilot.press("h")
            await wait_for(
                pilot,
                "the batch to halt",
                lambda: (
                    not screen.batch_run.running
                    and screen.state is not None
                    and screen.state.state is BatchState.HALTED
                ),
                within=60,
            )
            journal = Journal.open(screen.batch_run.id).replay()
            assert journal.state is BatchState.HALTED
            assert journal.reason == "halted by the operator"
            assert 2 not in journal.waves_passed  # the last wave never started
            assert "halted" in shown(screen, "#batch-title")
            pending = [s for s in target_states(screen).values() if s == "pending"]
            assert len(pending) >= 6

            await pilot.press("r")
            await wait_for(
                pilot,
                "the resumed batch to finish",
                lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                within=120,
            )
            await pilot.pause(0.5)
            assert set(target_states(screen).values()) == {"ok"}
            assert Journal.open(screen.batch_run.id).replay().state is BatchState.DONE

    run(scenario)
    poll_until("every deployment on version 2", lambda: versions(fleet) == {"2"})


def test_a_wrong_plan_field_says_why_under_it_and_sends_nothing(fleet: KwokFleet) -> None:
    async def scenario() -> None:
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            box = await open_plan_dialog(app, pilot, waves="50%,1", **{"max-parallel": "many"})
            await pilot.press("enter")
            waves_error: Any = box.query_one("#plan-waves-error")
            parallel_error: Any = box.query_one("#plan-max-parallel-error")
            assert "counts then percentages, increasing, ending at 100%" in str(
                waves_error.render()
            )
            assert "max parallel: a whole number" in str(parallel_error.render())
            assert isinstance(app.screen, ActionDialog)
            assert not box.running

    run(scenario)
    assert versions(fleet) == {"1"}
    assert not [e for e in read_audit(path=fleet.audit_path) if e.action == "rollout"]


def test_read_only_offers_no_rollout_and_a_listed_batch_cannot_be_resumed(
    fleet: KwokFleet,
) -> None:
    halted = halted_journal(fleet)

    async def scenario() -> None:
        app = fleet.deck(read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, "twelve rows", lambda: len(shown_names(app)) == len(NAMES))
            await pilot.press("A", "u")
            assert not isinstance(app.screen, ActionDialog)
            assert any("rollout: read-only" in n for n in notices(app))
            app.run_command("batches")
            listed = await wait_for(
                pilot,
                "the halted batch in :batches",
                lambda: listed_batches(app),
            )
            assert listed[0][:2] == [halted.id, "halted"]
            await pilot.press("enter")
            screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
            await pilot.press("r")
            assert any("resume: read-only" in n for n in notices(app))
            assert not screen.batch_run.running

    run(scenario)
    assert Journal.open(halted.id).replay().state is BatchState.HALTED
    assert versions(fleet) == {"1"}


def test_a_plan_the_preflight_refuses_says_why_in_the_dialog_and_starts_nothing(
    fleet: KwokFleet,
) -> None:
    assert fleet.backend.pause(fleet.namespace, "m-03").ok
    poll_until(
        "m-03 paused in the cache",
        lambda: (
            (row := fleet.backend.deployment(fleet.namespace, "m-03")) is not None
            and row.state is DeploymentState.PAUSED
        ),
    )

    async def scenario() -> None:
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            box = await open_plan_dialog(app, pilot, waves="1,100%", bake="0")
            await pilot.press("enter")
            problem: Any = box.query_one("#action-problem")
            await wait_for(
                pilot, "the refusal", lambda: "resume them first" in str(problem.render())
            )
            assert f"{fleet.namespace}/m-03" in str(problem.render())
            assert isinstance(app.screen, ActionDialog)
            assert not box.running
            assert not box.query_one("#run", Button).disabled  # fix it and try again

    run(scenario)
    assert list_journals() == []
    assert versions(fleet) == {"1"}


def halted_journal(fleet: KwokFleet) -> Journal:
    """A batch of two targets halted before it sent anything, as another operator left it."""
    targets = [(fleet.namespace, n) for n in NAMES[:2]]
    plan = make_plan(
        ActionSpec("rollout", version=2),
        targets,
        settings_from(fleet.backend.profile, waves="1,100%"),
    )
    journal = Journal.create(plan, {"user": "bob", "profile": "kwok"})
    journal.append("state", state="halted", reason="halted by the operator")
    return journal


def test_a_viewer_is_not_offered_a_rollout_in_waves_nor_a_resume(fleet: KwokFleet) -> None:
    halted = halted_journal(fleet)
    viewer = fleet.backend_as("viewer")
    try:

        async def scenario() -> None:
            app = fleet.deck(user_backend=viewer)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, "twelve rows", lambda: len(shown_names(app)) == len(NAMES))
                await wait_for(
                    pilot,
                    "the access review",
                    lambda: fleet.namespace in app.fleet.deck.permissions.checked,
                )
                await pilot.press("A", "u")
                assert not isinstance(app.screen, ActionDialog)
                assert any("rollout: forbidden" in n for n in notices(app)), notices(app)
                app.run_command("batches")
                listed = await wait_for(pilot, "the halted batch", lambda: listed_batches(app))
                assert listed[0][:2] == [halted.id, "halted"]
                await pilot.press("enter")
                screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
                await pilot.press("r")
                await wait_for(
                    pilot,
                    "the refusal",
                    lambda: any("may not patch deployments" in n for n in notices(app)),
                )
                assert not screen.batch_run.running

        run(scenario)
    finally:
        viewer.cache.stop()
    assert Journal.open(halted.id).replay().state is BatchState.HALTED
    assert versions(fleet) == {"1"}


def test_abort_asks_first_then_rolls_back_what_the_batch_changed(fleet: KwokFleet) -> None:
    async def scenario() -> None:
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            await open_plan_dialog(app, pilot, waves="1,50%,100%", bake="3")
            await pilot.press("enter")
            screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
            await wait_for(pilot, "wave 1 to pass", lambda: "wave 1 (1): done" in waves(screen))
            await pilot.press("h")
            await wait_for(pilot, "the batch to halt", lambda: halted(screen))
            await pilot.press("a")
            assert isinstance(app.screen, ConfirmAbort)
            await pilot.press("n")  # kept: nothing happens
            assert batch_screen(app) is screen
            assert not screen.batch_run.running
            await pilot.press("a", "y")
            await wait_for(
                pilot,
                "the abort to finish",
                lambda: screen.state is not None and screen.state.state is BatchState.ABORTED,
                within=120,
            )
            await pilot.pause(0.5)
            states = set(target_states(screen).values())
            assert not states & {"ok", "running"}, states
            assert "rolled back" in states
            assert "aborted" in shown(screen, "#batch-title")

    run(scenario)
    poll_until("every deployment back on version 1", lambda: versions(fleet) == {"1"})


def test_quitting_the_deck_mid_batch_halts_it_for_a_later_resume(fleet: KwokFleet) -> None:
    batch_id = ""

    async def scenario() -> None:
        nonlocal batch_id
        app = fleet.deck()
        async with app.run_test(size=SIZE) as pilot:
            await open_plan_dialog(app, pilot, waves="1,50%,100%", bake="30")
            await pilot.press("enter")
            screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
            batch_id = screen.batch_run.id
            await wait_for(pilot, "wave 1 to start", lambda: "wave 1 (1): running" in waves(screen))
            await pilot.press("escape")  # back to the fleet: the batch goes on
            await pilot.pause(0.5)
            assert screen.batch_run.running
            app.exit()

    run(scenario)
    poll_until(
        "the journal to say halted",
        lambda: Journal.open(batch_id).replay().state is BatchState.HALTED,
        60,
    )


def test_a_batch_the_cli_runs_is_listed_halted_from_the_deck_and_resumed_there(
    fleet: KwokFleet, tmp_path: Path
) -> None:
    cli = Fleetdeck(fleet.cluster, fleet.namespace, tmp_path)  # same state folder and store
    process = cli.start(
        "rollout", "-l", "fleetdeck.io/model=digits", "--version", "2", "--yes",
        "--waves", "1,50%,100%", "--bake", "5",
    )  # fmt: skip
    try:

        async def scenario() -> None:
            # The deck on the CLI's profile: a batch is resumed by the profile that started it.
            profile = dataclasses.replace(fleet.backend.profile, name="test")
            app = DeckApp(
                fleet.backend, profile, context="kwok-admin", user="alice",
                audit_path=fleet.audit_path,
            )  # fmt: skip
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, "twelve rows", lambda: len(shown_names(app)) == len(NAMES))
                app.run_command("batches")

                def running_elsewhere() -> list[list[str]] | None:
                    rows = listed_batches(app)
                    if rows and rows[0][1] == "running (elsewhere)":
                        return rows
                    app.screen.action_reload()  # type: ignore[attr-defined]
                    return None

                await wait_for(pilot, "the CLI's batch, running", running_elsewhere, within=60)
                await pilot.press("enter")
                screen = await wait_for(pilot, "the Batch screen", lambda: batch_screen(app))
                await pilot.press("h")
                assert any("asked process" in n and "to halt" in n for n in notices(app))
                await wait_for(pilot, "the journal to say halted", lambda: halted(screen))
                assert process.wait(timeout=60) == 1  # the CLI stops: halted is not done
                await pilot.press("r")
                await wait_for(
                    pilot,
                    "the deck to finish it",
                    lambda: screen.state is not None and screen.state.state is BatchState.DONE,
                    within=120,
                )
                await pilot.pause(0.5)
                assert set(target_states(screen).values()) == {"ok"}

        run(scenario)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)
    poll_until("every deployment on version 2", lambda: versions(fleet) == {"2"})
