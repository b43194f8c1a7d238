"""A short list to choose one from (``:ctx``'s contexts, ``:ns``'s namespaces): enter picks,
esc closes without choosing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from console.views.format import printable


class PickScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    PickScreen { align: center middle; }
    PickScreen > Vertical {
        width: 60; max-width: 100%; height: auto; max-height: 80%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    PickScreen OptionList { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", id="pick.close")]

    def __init__(self, title: str, choices: Sequence[str], current: str | None = None) -> None:
        super().__init__()
        self.title_text, self.choices, self.current = title, list(choices), current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(printable(self.title_text)))
            yield OptionList(
                *(
                    # Text, not markup: a kubeconfig's names are the user's, shown as they are.
                    Option(Text(printable(c + ("  (current)" if c == self.current else ""))), id=c)
                    for c in self.choices
                ),
                id="pick-list",
            )

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        if self.current in self.choices:
            options.highlighted = self.choices.index(self.current)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
