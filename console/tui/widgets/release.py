"""Releasing a model version from the Training and Models screens: deploy it as a new
deployment, or pick deployments to roll out to it (the deck's action dialog then confirms,
previews and runs the batch, with an audit line per target).

A deploy goes through :func:`console.core.actions.perform` in a thread worker, as
``fleetdeck deploy`` does: the same checks, the same audit line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static
from textual.widgets.selection_list import Selection

from console.core import actions
from console.model import ActionResult, DeployRequest, ModelDeployment
from console.names import InvalidName, check_label
from console.tui.context import DeckContext
from console.tui.screens.action_dialog import ActionDialog
from console.tui.widgets.submit_dialog import SubmitDialog, perform_shown
from console.views.format import printable

DIALOG_CSS = """
    {name} {{ align: center middle; }}
    {name} > Vertical {{
        width: 76; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }}
    {name} Input {{ margin: 0; }}
    {name} .problem {{ color: $error; height: auto; }}
    {name} Horizontal {{ height: auto; }}
    {name} Button {{ margin: 0 1 0 0; }}
"""


def deploy_request(
    name: str, model: str, version: int, namespace: str, replicas: str
) -> DeployRequest | str:
    """The deploy to send, or what to fix (shown in the dialog)."""
    try:
        check_label(name, "deployment name")
        if namespace:
            check_label(namespace, "namespace")
    except InvalidName as exc:
        return printable(exc)
    count: int | None = None
    if replicas.strip():
        if not replicas.strip().isdigit():
            return f"replicas {replicas!r}: a whole number (empty: the profile's default)"
        count = int(replicas)
    return DeployRequest(name, model, version, namespace or None, count)


class DeployDialog(SubmitDialog[ActionResult | None]):
    """Deploy ``model`` version ``version`` as a new deployment (name, namespace, replicas)."""

    DEFAULT_CSS = DIALOG_CSS.format(name="DeployDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="release.close"),
        Binding("ctrl+t", "dry_run", "Dry run", id="release.dry_run"),
    ]

    class Done(Message):
        def __init__(self, result: ActionResult, note: str) -> None:
            super().__init__()
            self.result = result
            self.note = note

    def __init__(self, deck: DeckContext, model: str, version: int, namespace: str) -> None:
        super().__init__()
        self.deck, self.model, self.version, self.namespace = deck, model, version, namespace
        self.result: ActionResult | None = None
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Deploy {self.model} version {self.version}")
            yield Input(self.model, placeholder="deployment name", id="deploy-name")
            yield Input(self.namespace, placeholder="namespace", id="deploy-namespace")
            yield Input(
                placeholder=f"replicas (empty: {self.deck.profile.predictor.replicas})",
                id="deploy-replicas",
                type="integer",
            )
            yield Static("", id="deploy-problem", classes="problem", markup=False)
            with Horizontal():
                yield Button("Dry run", id="dry-run")
                yield Button("Deploy", id="run", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#deploy-name", Input).focus()

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def outcome(self) -> ActionResult | None:
        return self.result

    def _start(self, *, dry_run: bool) -> None:
        if self.running:
            return
        request = deploy_request(
            self._value("deploy-name"),
            self.model,
            self.version,
            self._value("deploy-namespace"),
            self._value("deploy-replicas"),
        )
        problem = self.query_one("#deploy-problem", Static)
        if isinstance(request, str):
            problem.update(request)
            return
        self.running = True
        problem.update("dry run..." if dry_run else "deploying...")
        self._deploy(request, dry_run)

    @work(thread=True, group="deploy", exit_on_error=False)
    def _deploy(self, request: DeployRequest, dry_run: bool) -> None:
        namespace = request.namespace or self.deck.default_namespace
        results, note = perform_shown(
            self.deck,
            actions.Deploy(request),
            dry_run=dry_run,
            target=f"{namespace}/{request.name}",
        )
        self.post_message(self.Done(results[0], note))

    def on_deploy_dialog_done(self, message: Done) -> None:
        self.running = False
        result = message.result
        # One line per part, each printable: the message and changes quote the backend.
        text = printable(f"{result.target}: {'ok' if result.ok else 'FAILED'}: {result.message}")
        text += "".join(f"\n    {printable(change)}" for change in result.changes)
        if message.note:
            text += f"\n{message.note}"
        self.query_one("#deploy-problem", Static).update(text)
        if result.ok and not result.dry_run:
            self.dismiss(result)


class RolloutPicker(ModalScreen[list[ModelDeployment] | None]):
    """Choose the deployments to roll out to a version (those serving the model are chosen)."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="RolloutPicker")
        + """
    RolloutPicker SelectionList { height: auto; max-height: 14; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="release.close"),
        Binding("ctrl+a", "all", "All", id="release.all"),
        Binding("ctrl+n", "none", "None", id="release.none"),
    ]

    def __init__(self, model: str, version: int, deployments: Sequence[ModelDeployment]) -> None:
        super().__init__()
        self.model, self.version = model, version
        self.deployments = sorted(deployments, key=lambda d: (d.model != model, d.key))

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Roll out {self.model} version {self.version} to (space toggles):")
            yield SelectionList[int](
                *(
                    Selection(
                        # Text, not markup: a stored name may hold '[' or a control character.
                        Text(
                            printable(
                                f"{d.namespace}/{d.name}  {d.model} v{d.version}  {d.state.value}"
                            )
                        ),
                        index,
                        d.model == self.model and d.version != str(self.version),
                    )
                    for index, d in enumerate(self.deployments)
                ),
                id="rollout-choice",
            )
            yield Static("", id="rollout-problem", classes="problem", markup=False)
            with Horizontal():
                yield Button("Next", id="run", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    @property
    def chosen(self) -> list[ModelDeployment]:
        selected = self.query_one("#rollout-choice", SelectionList).selected
        return [self.deployments[i] for i in sorted(selected)]

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.action_close()
        else:
            self.action_next()

    def action_next(self) -> None:
        if not self.chosen:
            self.query_one("#rollout-problem", Static).update(
                "choose at least one deployment (space toggles, ctrl+a all)"
            )
            return
        self.dismiss(self.chosen)

    def key_enter(self) -> None:
        self.action_next()

    def action_all(self) -> None:
        self.query_one("#rollout-choice", SelectionList).select_all()

    def action_none(self) -> None:
        self.query_one("#rollout-choice", SelectionList).deselect_all()

    def action_close(self) -> None:
        self.dismiss(None)


class RolloutDialog(ActionDialog):
    """The deck's action dialog for a rollout, with the version already filled in."""

    def __init__(self, deck: DeckContext, version: int, targets: Sequence[ModelDeployment]) -> None:
        super().__init__(deck, "rollout", targets)
        self.version = version

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#version", Input).value = str(self.version)
        self.query_one("#run", Button).focus()
