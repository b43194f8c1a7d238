"""A modal form that sends once per submit and can preview with a server-side dry run: the run
button or Enter sends, the dry-run button (or its key) previews, cancel or esc closes unless a
request is in flight. Subclasses build the request in ``_start`` and say what closing returns."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

ResultT = TypeVar("ResultT")


class SubmitDialog(ModalScreen[ResultT]):
    running = False  # a request is in flight: closing waits for its answer

    def outcome(self) -> ResultT:
        """What the dialog returns when it closes."""
        raise NotImplementedError

    def _start(self, *, dry_run: bool) -> None:
        raise NotImplementedError

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.action_close()
        else:
            self._start(dry_run=event.button.id == "dry-run")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._start(dry_run=False)

    def action_dry_run(self) -> None:
        self._start(dry_run=True)

    def action_close(self) -> None:
        if not self.running:
            self.dismiss(self.outcome())
