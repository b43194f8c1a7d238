"""``?``: every key of the screen underneath, the global keys, and what is not offered and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KeyHelp = tuple[str, str]  # key, what it does


def help_table(title: str, keys: Sequence[KeyHelp], unavailable: Sequence[KeyHelp]) -> Table:
    table = Table(title=title, show_header=False, box=None, expand=True, padding=(0, 1))
    table.add_column("key", style="bold", no_wrap=True, width=12)
    table.add_column("does")
    for key, text in keys:
        table.add_row(key, text)
    if unavailable:
        table.add_row("", "")
        table.add_row("", Text("Not offered here:", style="bold"))
        for key, why in unavailable:
            table.add_row(key, Text(why, style="italic"))
    return table


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, title: str, keys: Sequence[KeyHelp], unavailable: Sequence[KeyHelp]) -> None:
        super().__init__()
        self.help_title = title
        self.keys = list(keys)
        self.unavailable = list(unavailable)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Static(help_table(self.help_title, self.keys, self.unavailable))
            yield Static("esc, ? or q closes this help", id="help-hint")

    def action_close(self) -> None:
        self.dismiss(None)
