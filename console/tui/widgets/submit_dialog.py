"""A modal form that sends once per submit and can preview with a server-side dry run: the run
button or Enter sends, the dry-run button (or its key) previews, cancel or esc closes unless a
request is in flight. Subclasses build the request in ``_start`` and say what closing returns;
their thread workers send it with :func:`perform_shown`, the one path every front-end takes."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

from console.core import actions
from console.model import ActionResult
from console.tui.context import DeckContext

ResultT = TypeVar("ResultT")


def perform_shown(
    deck: DeckContext, request: actions.Request, *, dry_run: bool, target: str
) -> tuple[list[ActionResult], str]:
    """Send ``request`` through :func:`console.core.actions.perform` (guard, backend, audit)
    from a worker thread: the results, and why the audit log is missing a line ("" when it is
    not). A refusal or a backend's failure comes back as a failed result on ``target``, its
    reason shown in the dialog: the deck goes on."""
    try:
        outcome = actions.perform(deck, request, dry_run=dry_run)
    except Exception as exc:  # the guard's refusal or the backend's reason, said as it is
        return [ActionResult(target, False, str(exc) or type(exc).__name__, dry_run)], ""
    return list(outcome.results), outcome.audit_error


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
