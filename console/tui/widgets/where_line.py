"""The line at the top of every deck screen but the Fleet's (whose status bar says the same):
the profile, the kube context in its colour, the namespaces and READ-ONLY. Production is never
mistaken for staging, whichever screen is open."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from console.tui.context import ClusterDecks, DeckContext, breach_of, deck_of
from console.tui.widgets.status_bar import append_breach, where_text
from console.views.format import printable


def deck_where(deck: DeckContext) -> Text:
    text = where_text(
        deck.profile.name, deck.context, deck.namespaces, deck.context_color, deck.cluster
    )
    if deck.read_only:
        text.append("  ")
        text.append(" READ-ONLY ", style="bold reverse")
    return text


def clusters_where(clusters: ClusterDecks) -> Text:
    """A screen over every cluster of the deck: ``profile`` and each cluster with its context."""
    home = clusters.home
    text = Text()
    text.append(printable(home.profile.name), style="bold")
    for name, deck in clusters.decks.items():
        text.append(f"  {printable(name)}", style="bold")
        if deck.context:
            text.append(f"@{printable(deck.context)}", style=f"bold {deck.context_color}".strip())
        if deck.read_only:
            text.append(" READ-ONLY", style="bold reverse")
    for name in clusters.unavailable:
        text.append(f"  {printable(name)}: unavailable", style="bold red")
    return text


class WhereLine(Static):
    """Shows ``deck`` (or, when none is given, the deck of the app it runs in); hidden on a
    screen hosted outside a deck (a test's host of one screen)."""

    DEFAULT_CSS = """
    WhereLine { height: 1; background: $boost; padding: 0 1; }
    """

    def __init__(
        self, deck: DeckContext | None = None, clusters: ClusterDecks | None = None
    ) -> None:
        super().__init__("", classes="where-line", markup=False)
        self._deck = deck
        self._where = Text()
        self._breach = ""
        self._clusters = clusters  # a screen over several clusters names them all

    def on_mount(self) -> None:
        if self._clusters is not None and self._clusters.several:
            self._where = clusters_where(self._clusters)
        else:
            deck = self._deck or deck_of(self.app)
            if deck is None:
                self.display = False
                return
            self._where = deck_where(deck)
        self._breach = breach_of(self.app)
        self._show()
        self.set_interval(1.0, self._follow_breach)

    def _follow_breach(self) -> None:
        breach = breach_of(self.app)
        if breach != self._breach:
            self._breach = breach
            self._show()

    def _show(self) -> None:
        text = Text()
        append_breach(text, self._breach)
        text.append_text(self._where)
        self.update(text)
