"""The line at the top of every deck screen but the Fleet's (whose status bar says the same):
the profile, the kube context in its colour, the namespaces and READ-ONLY. Production is never
mistaken for staging, whichever screen is open."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.tui.context import DeckContext, deck_of
from console.tui.widgets.status_bar import where_text


def deck_where(deck: DeckContext) -> Text:
    text = where_text(
        deck.profile.name, deck.context, deck.namespaces, deck.context_color, deck.cluster
    )
    if deck.read_only:
        text.append("  ")
        text.append(" READ-ONLY ", style="bold reverse")
    return text


class WhereLine(Static):
    """Shows ``deck`` (or, when none is given, the deck of the app it runs in); hidden on a
    screen hosted outside a deck (a test's host of one screen)."""

    DEFAULT_CSS = """
    WhereLine { height: 1; background: $boost; padding: 0 1; }
    """

    def __init__(self, deck: DeckContext | None = None) -> None:
        super().__init__("", classes="where-line", markup=False)
        self._deck = deck

    def on_mount(self) -> None:
        deck = self._deck or deck_of(self.app)
        if deck is None:
            self.display = False
            return
        self.update(deck_where(deck))
