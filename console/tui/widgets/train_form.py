"""The form that launches a training job, or a grid sweep (one job per combination).

Everything is checked before anything is sent, with the same parsers as ``fleetdeck train``
(``--param key=value``, ``--grid key=v1,v2``), and the errors say what to type. The launch goes
through :func:`console.core.actions.perform` in a thread worker, as the CLI's ``train`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, Static

from console.core import actions
from console.model import ActionResult, TrainingRequest
from console.tui.context import DeckContext
from console.tui.widgets.release import DIALOG_CSS
from console.tui.widgets.submit_dialog import SubmitDialog, perform_shown
from console.views.format import printable
from training.params import ParamError, parse_grid, parse_param

FIELDS: tuple[tuple[str, str], ...] = (
    ("model", "model name (a store name: letters, digits, - and _)"),
    ("data", "data set (e.g. digits, or a path/URI the training image can read)"),
    ("namespace", "namespace"),
    ("gpus", "GPUs per job"),
    ("epochs", "epochs (empty: the training default)"),
    ("params", "model params: key=value ... (e.g. width=32 depth=3)"),
    ("grid", "sweep grid: key=v1,v2 ... (e.g. learning_rate=0.001,0.01 width=16,32)"),
)
MAX_TRIALS = 64  # a bigger grid is almost always a typo; the CLI is there for it


def build_request(values: Mapping[str, str]) -> TrainingRequest | str:
    """The request the form describes, or the first thing to fix (shown under the form)."""
    from serving.store import StoreError, check_model_name

    model, data = values.get("model", "").strip(), values.get("data", "").strip()
    if not model:
        return "model: name the model to train (e.g. digits)"
    try:
        check_model_name(model)
    except (StoreError, ValueError) as exc:
        return f"model: {exc}"
    if not data:
        return "data: name the data set to train on (e.g. digits)"
    gpus = _count(values.get("gpus", ""), "gpus")
    epochs = _count(values.get("epochs", ""), "epochs", minimum=1)
    for parsed in (gpus, epochs):
        if isinstance(parsed, str):
            return parsed
    try:
        params = dict(parse_param(p) for p in values.get("params", "").split())
    except ParamError as exc:
        return f"params: {exc}"
    try:
        grid = {key: tuple(v) for key, v in (parse_grid(g) for g in values.get("grid", "").split())}
    except ParamError as exc:
        return f"grid: {exc}"
    if any(not choices for choices in grid.values()):
        return "grid: give each key at least one value (key=v1,v2)"
    trials = 1
    for choices in grid.values():
        trials *= len(choices)
    if trials > MAX_TRIALS:
        return f"grid: {trials} trials is more than {MAX_TRIALS}; narrow it or use the CLI"
    return TrainingRequest(
        model,
        data,
        values.get("namespace", "").strip() or None,
        gpus if isinstance(gpus, int) else None,
        epochs if isinstance(epochs, int) else None,
        params,
        grid,
    )


def _count(text: str, field: str, minimum: int = 0) -> int | str | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        return f"{field} {text!r}: a whole number, {minimum} or more"
    return int(text)


class TrainForm(SubmitDialog[list[ActionResult] | None]):
    """Launch a job (or a sweep); dismissed with the results once a real launch succeeds."""

    DEFAULT_CSS = (
        DIALOG_CSS.format(name="TrainForm")
        + """
    TrainForm VerticalScroll { height: auto; max-height: 14; }
    TrainForm .field { height: 1; }
    TrainForm .field Label { width: 11; color: $text-muted; }
    TrainForm .field Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    TrainForm .field Input:focus { background: $boost; }
    TrainForm #train-results { height: auto; max-height: 4; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="train-form.close"),
        Binding("ctrl+t", "dry_run", "Dry run", id="train-form.dry_run"),
    ]

    class Done(Message):
        def __init__(self, results: list[ActionResult], note: str, dry_run: bool) -> None:
            super().__init__()
            self.results = results
            self.note = note
            self.dry_run = dry_run

    def __init__(
        self,
        deck: DeckContext,
        *,
        namespace: str,
        gpus: int,
        model: str = "",
        data: str = "",
    ) -> None:
        super().__init__()
        self.deck = deck
        self.defaults = {"namespace": namespace, "gpus": str(gpus), "model": model, "data": data}
        self.running = False
        self.results: list[ActionResult] | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Launch a training job (a grid launches one job per combination)")
            with VerticalScroll():
                for name, placeholder in FIELDS:  # one line each: the form fits 80×24
                    with Horizontal(classes="field"):
                        yield Label(name)
                        yield Input(
                            self.defaults.get(name, ""),
                            placeholder=placeholder,
                            id=f"train-{name}",
                            type="integer" if name in ("gpus", "epochs") else "text",
                        )
            yield Static("", id="train-results", classes="problem", markup=False)
            with Horizontal():
                yield Button("Dry run", id="dry-run")
                yield Button("Launch", id="run", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#train-model", Input).focus()

    def values(self) -> dict[str, str]:
        return {name: self.query_one(f"#train-{name}", Input).value for name, _ in FIELDS}

    def outcome(self) -> list[ActionResult] | None:
        return self.results

    def _start(self, *, dry_run: bool) -> None:
        if self.running:
            return
        request = build_request(self.values())
        shown = self.query_one("#train-results", Static)
        if isinstance(request, str):
            shown.update(request)
            return
        self.running = True
        shown.update("dry run..." if dry_run else "launching...")
        self._train(request, dry_run)

    @work(thread=True, group="train", exit_on_error=False)
    def _train(self, request: TrainingRequest, dry_run: bool) -> None:
        results, note = perform_shown(
            self.deck, actions.Train(request), dry_run=dry_run, target=request.model
        )
        self.post_message(self.Done(results, note, dry_run))

    def on_train_form_done(self, message: Done) -> None:
        self.running = False
        lines = [
            printable(f"{r.target}: {'ok' if r.ok else 'FAILED'}: {r.message}")
            for r in message.results
        ]
        if message.note:
            lines.append(message.note)
        self.query_one("#train-results", Static).update("\n".join(lines))
        if not message.dry_run and all(r.ok for r in message.results):
            self.results = message.results
            self.dismiss(message.results)
