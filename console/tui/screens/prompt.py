"""``:``: a one-line command prompt at the bottom (k9s's ``:deploy``, ``:jobs``, ``:logs NAME``)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input

COMMAND_HELP = "deploy | jobs | models | logs NAME | overview | top | batches | help | quit"


class CommandPrompt(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel")
    ]

    def compose(self) -> ComposeResult:
        yield Input(placeholder=f":{COMMAND_HELP}", id="command-line")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
