"""One action on the marked rows (or the cursor row): confirm, preview, run, watch.

The dialog lists the count and the targets, asks for the action's parameter (version,
replicas, revision), offers a server-side dry run, and for more than ``TYPED_CONFIRMATION``
targets asks the operator to type the count. The batch runs in a thread worker through
``console.core.actions.perform`` (the guard first, bounded parallelism from the profile, an
audit line per target); its progress events come back as messages and every target's outcome
is listed with its reason as it arrives.

A rollout or rollback on several targets also offers the plan fields (waves, parallelism, halt
threshold, bake, SLO gates, what to do on failure): with waves set, Run checks the plan
(read-only, RBAC, a server-side dry run), journals it and opens the Batch screen, which runs it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Sequence
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Log, ProgressBar, Static

from console.batch import lifecycle
from console.batch.journal import Journal
from console.batch.plan import Plan, make_plan
from console.batch.runner import Action, ActionSpec, Progress, TargetState
from console.core import actions, guard
from console.model import ActionResult, ModelDeployment
from console.tui.context import DeckContext
from console.tui.messages import OpenBatch
from console.tui.permissions import ACTION_TITLES
from console.tui.widgets.plan_fields import PlanFields

TYPED_CONFIRMATION = 10  # more targets than this: type the count to confirm
LISTED_TARGETS = 8
PLAN_ACTIONS = frozenset({"rollout", "rollback"})  # what may run in waves
MARKS = {
    TargetState.OK: "ok  ",
    TargetState.FAILED: "FAIL",
    TargetState.SKIPPED: "skip",
}


class ActionDialog(ModalScreen[list[ActionResult] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="action-dialog.close"),
        Binding("ctrl+t", "dry_run", "Dry run", id="action-dialog.dry_run"),
    ]

    class BatchProgress(Message):
        def __init__(self, event: Progress, dry_run: bool) -> None:
            super().__init__()
            self.event = event
            self.dry_run = dry_run

    class PlanRefused(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class PlanReady(Message):
        def __init__(self, journal: Journal) -> None:
            super().__init__()
            self.journal = journal

    class BatchDone(Message):
        def __init__(self, results: list[ActionResult], dry_run: bool) -> None:
            super().__init__()
            self.results = results
            self.dry_run = dry_run

    def __init__(
        self, deck: DeckContext, action: Action, targets: Sequence[ModelDeployment]
    ) -> None:
        super().__init__()
        self.deck = deck
        self.action = action
        self.targets = list(targets)
        self.results: list[ActionResult] = []
        self.running = False
        self.finished = False
        self._states: Counter[TargetState] = Counter()
        self._stop = threading.Event()
        self.offers_plan = action in PLAN_ACTIONS and len(self.targets) > 1

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        count = len(self.targets)
        noun = "deployment" if count == 1 else "deployments"
        with Vertical(id="action-dialog"):
            yield Label(f"{ACTION_TITLES[self.action]}: {count} {noun}", id="action-title")
            yield Static(self._target_list(), id="action-targets")
            if self.action == "rollout":
                yield Input(placeholder="model version to roll out", id="version", type="integer")
            elif self.action == "scale":
                desired = self.targets[0].desired if self.targets else 1
                yield Input(str(desired), placeholder="replicas", id="replicas", type="integer")
            elif self.action == "rollback":
                yield Input(
                    placeholder="revision (empty: the previous one)", id="revision", type="integer"
                )
            if self.offers_plan:
                yield PlanFields(self.deck.profile, id="plan-fields")
            if count > TYPED_CONFIRMATION:
                yield Input(placeholder=f"type {count} to confirm", id="confirm-count")
            yield Static("", id="action-problem")
            with Horizontal(id="action-buttons"):
                yield Button("Dry run", id="dry-run")
                danger = self.action == "delete"
                yield Button(self._run_label(), id="run", variant="error" if danger else "primary")
                yield Button("Cancel", id="cancel")
            yield ProgressBar(total=count, show_eta=False, id="action-progress")
            yield Static("", id="action-counts")
            yield Log(id="action-results", max_lines=5000)

    def _run_label(self) -> str:
        return {"delete": "Delete", "rollout": "Roll out", "rollback": "Roll back"}.get(
            self.action, self.action.capitalize()
        )

    def _target_list(self) -> str:
        names = [f"{d.namespace}/{d.name}" for d in self.targets]
        shown = names[: 2 if self.offers_plan else LISTED_TARGETS]  # the plan needs the room
        more = len(names) - len(shown)
        return "\n".join(shown) + (f"\n… and {more} more" if more else "")

    def on_mount(self) -> None:
        self.query_one("#action-progress").display = False
        self.query_one("#action-results").display = False
        inputs = self.query(Input)
        if inputs:
            inputs.first().focus()
        else:
            self.query_one("#run", Button).focus()

    # -- parameters ---------------------------------------------------------------------------
    def _integer(self, widget_id: str) -> int | None:
        text = self.query_one(f"#{widget_id}", Input).value.strip()
        return int(text) if text.lstrip("-").isdigit() else None

    def spec(self) -> ActionSpec | str:
        """The action to send, or what is missing (shown under the inputs)."""
        try:
            if self.action == "rollout":
                version = self._integer("version")
                if version is None or version < 1:
                    return "enter the model version to roll out (a whole number, 1 or more)"
                return ActionSpec("rollout", version=version)
            if self.action == "scale":
                replicas = self._integer("replicas")
                if replicas is None or replicas < 0:
                    return "enter the number of replicas (0 or more)"
                return ActionSpec("scale", replicas=replicas)
            if self.action == "rollback":
                return ActionSpec("rollback", to_revision=self._integer("revision") or 0)
            return ActionSpec(self.action)
        except ValueError as exc:
            return str(exc)

    def _confirmed(self) -> bool:
        count = len(self.targets)
        if count <= TYPED_CONFIRMATION:
            return True
        return self.query_one("#confirm-count", Input).value.strip() == str(count)

    def _problem(self, text: str) -> None:
        self.query_one("#action-problem", Static).update(text)

    # -- running ------------------------------------------------------------------------------
    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "dry-run":
            self.action_dry_run()
        elif event.button.id == "run":
            self.action_run()
        elif event.button.id == "cancel":
            self.action_close()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_run()

    def action_dry_run(self) -> None:
        self._start(dry_run=True)

    def action_run(self) -> None:
        if not self._confirmed():
            self._problem(f"type {len(self.targets)} in the confirmation box to run on all of them")
            return
        if self.offers_plan and self.query_one(PlanFields).in_waves():
            self._start_plan()
            return
        self._start(dry_run=False)

    def _startable_spec(self) -> ActionSpec | None:
        """The action to send, when nothing runs or has run; else None (what is missing in the
        inputs said under them)."""
        if self.running or self.finished:
            return None
        spec = self.spec()
        if isinstance(spec, str):
            self._problem(spec)
            return None
        return spec

    def _start(self, *, dry_run: bool) -> None:
        spec = self._startable_spec()
        if spec is None:
            return
        self._problem("")
        self.running = True
        self._states.clear()
        progress = self.query_one("#action-progress", ProgressBar)
        progress.display = True
        progress.update(total=len(self.targets), progress=0)
        log = self.query_one("#action-results", Log)
        log.display = True
        log.clear()
        log.write_line(f"{'dry run: ' if dry_run else ''}{spec.describe()} on {len(self.targets)}")
        for button in self.query(Button):
            button.disabled = button.id != "cancel"
        self.query_one("#cancel", Button).label = "Stop" if not dry_run else "Cancel"
        self._run_batch(spec, dry_run)

    # -- a plan in waves ----------------------------------------------------------------------
    def _start_plan(self) -> None:
        spec = self._startable_spec()
        if spec is None:
            return
        choice = self.query_one(PlanFields).choice()
        if choice is None:
            self._problem("fix the plan fields marked above")
            return
        try:
            plan = make_plan(spec, [d.key for d in self.targets], choice.settings, slo=choice.slo)
        except ValueError as exc:
            self._problem(str(exc))
            return
        if self.deck.cluster:  # a deck over several clusters: the journal names this one
            plan = dataclasses.replace(plan, cluster=self.deck.cluster)
        self._problem("checking the plan: read-only, RBAC, a server-side dry run…")
        self.running = True
        for button in self.query(Button):
            button.disabled = button.id != "cancel"
        self.query_one("#cancel", Button).label = "Stop"
        self._prepare_plan(plan)

    @work(thread=True, group="batch", exit_on_error=False)
    def _prepare_plan(self, plan: Plan) -> None:
        """The CLI's order (core.actions.check_plan): read-only and RBAC, the targets, the
        server's dry run, then the journal."""
        try:
            actions.check_plan(self.deck, plan)
        except (actions.PlanRefused, guard.Refusal) as exc:
            self.post_message(self.PlanRefused(str(exc)))
            return
        if self._stop.is_set():  # Stop pressed while the plan was checked
            self._stop.clear()
            self.post_message(
                self.PlanRefused("stopped before the batch started; nothing was sent")
            )
            return
        self.post_message(self.PlanReady(lifecycle.new_journal(plan, self.deck.audit, "deck")))

    def on_action_dialog_plan_refused(self, message: PlanRefused) -> None:
        self.running = False
        self._problem(message.text)
        for button in self.query(Button):
            button.disabled = False
        self.query_one("#cancel", Button).label = "Cancel"

    def on_action_dialog_plan_ready(self, message: PlanReady) -> None:
        self.running = False
        self.finished = True
        run = lifecycle.runs_of(self.app).get(self.deck, message.journal)
        run.start(self.app)
        app = self.app
        self.dismiss(None)
        app.post_message(OpenBatch(run))  # the dialog is gone: ask the app itself

    @work(thread=True, group="batch", exit_on_error=False)
    def _run_batch(self, spec: ActionSpec, dry_run: bool) -> None:
        def report(event: Progress) -> None:
            self.post_message(self.BatchProgress(event, dry_run))  # thread-safe, never blocks

        request = actions.OnTargets(spec, tuple(d.key for d in self.targets))
        try:
            outcome = actions.perform(
                self.deck,
                request,
                dry_run=dry_run,
                max_parallel=self.deck.profile.batch.max_parallel,
                on_progress=report,
                stop=self._stop,
            )
        except guard.Refusal as exc:  # nothing was sent: say why, as a refused plan does
            self.post_message(self.PlanRefused(exc.text))
            return
        self.post_message(self.BatchDone(list(outcome.results), dry_run))

    def on_action_dialog_batch_progress(self, message: BatchProgress) -> None:
        event = message.event
        self._states[event.state] += 1
        if event.state in MARKS:
            if event.state is not TargetState.SKIPPED:  # a skipped target never ran
                self._states[TargetState.RUNNING] -= 1
            self.query_one("#action-progress", ProgressBar).advance(1)
            changes = ""
            if message.dry_run and event.result and event.result.changes:
                changes = " [" + "; ".join(event.result.changes) + "]"
            line = f"{MARKS[event.state]} {event.target}: {event.message}{changes}"
            self.query_one("#action-results", Log).write_line(line)
        self._show_counts()

    def _show_counts(self) -> None:
        s = self._states
        pending = len(self.targets) - s[TargetState.RUNNING] - sum(s[k] for k in MARKS)
        self.query_one("#action-counts", Static).update(
            f"running {max(0, s[TargetState.RUNNING])}  pending {max(0, pending)}  "
            f"ok {s[TargetState.OK]}  failed {s[TargetState.FAILED]}  "
            f"skipped {s[TargetState.SKIPPED]}"
        )

    def on_action_dialog_batch_done(self, message: BatchDone) -> None:
        self.running = False
        failed = sum(1 for r in message.results if not r.ok)
        summary = f"{len(message.results) - failed} ok, {failed} failed"
        log = self.query_one("#action-results", Log)
        cancel = self.query_one("#cancel", Button)
        if message.dry_run:
            log.write_line(f"dry run done: {summary}; nothing was changed")
            for button in self.query(Button):
                button.disabled = False
            cancel.label = "Cancel"
            return
        self.results = message.results
        self.finished = True
        log.write_line(f"done: {summary}")
        cancel.label = "Close"
        cancel.disabled = False
        cancel.focus()

    def action_close(self) -> None:
        if self.running:
            self._stop.set()  # requests in flight finish; nothing more is sent
            self._problem("stopping: the requests in flight finish, no more are sent")
            return
        self.dismiss(self.results if self.finished else None)
