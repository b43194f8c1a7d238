"""The line above the Fleet table: where we are, what the fleet looks like, whether it is live."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC

from rich.text import Text
from textual.widgets import Static

from console.backends.base import Connection
from console.views.fleet_data import ClusterLink
from console.views.fleet_rows import FleetCounts
from console.views.format import printable


@dataclass(frozen=True)
class StatusInfo:
    profile: str
    context: str | None
    namespaces: Sequence[str]  # (): all namespaces
    read_only: bool
    counts: FleetCounts = field(default_factory=FleetCounts)
    connection: Connection | None = None  # None: not read yet
    filter_text: str = ""
    sort: str = ""
    denied: str = ""  # e.g. "viewer: no patch, delete" when RBAC removes actions
    context_color: str = ""  # the profile's colour for this context ([deck] context_colors)
    clusters: tuple[ClusterLink, ...] = ()  # a deck over several: each one's connection
    breach: str = ""  # "2 breaching SLO; worst ...": first, loud, on every screen


def where_text(
    profile: str,
    context: str | None,
    namespaces: Sequence[str],
    context_color: str = "",
    cluster: str = "",
) -> Text:
    """``profile@context [namespaces]``: where the deck is, on every screen (``profile/cluster``
    on a screen of one cluster of a deck over several). The context is always named; its colour
    (the profile's ``[deck] context_colors``) only tells production from staging faster."""
    text = Text()
    text.append(printable(profile), style="bold")
    if cluster:
        text.append(f"/{printable(cluster)}", style="bold")
    if context:
        text.append(f"@{printable(context)}", style=f"bold {context_color}".strip())
    spaces = ",".join(namespaces) if namespaces else "all namespaces"
    text.append(f" [{printable(spaces)}]")
    return text


def status_text(info: StatusInfo) -> Text:
    """Plain words first (they survive NO_COLOR and screen readers); colour only emphasises."""
    text = Text()
    append_breach(text, info.breach)
    text.append_text(where_text(info.profile, info.context, info.namespaces, info.context_color))
    text.append("  ")
    c = info.counts
    shown = f"{c.shown}/{c.total}" if c.shown != c.total else str(c.total)
    text.append(f"{shown} deployments")
    for count, word, style in (
        (c.failed, "failed", "bold red"),
        (c.degraded, "degraded", "yellow"),
        (c.progressing, "progressing", "cyan"),
        (c.marked, "marked", "bold"),
    ):
        text.append("  ")
        text.append(f"{count} {word}", style=style if count else "")
    if info.clusters:
        for link in info.clusters:  # each cluster's own state: one never hides another's
            text.append(f"  {printable(link.name)}: ", style="bold")
            if link.connection is None:
                text.append("unavailable", style="bold red")
                text.append(f" ({printable(link.why)[:60]})", style="red")
            else:
                append_connection(text, link.connection, detail_width=40)
    else:
        text.append("  ")
        append_connection(text, info.connection)
    if info.read_only:
        text.append("  ")
        text.append(" READ-ONLY ", style="bold reverse")
    if info.denied:
        text.append(f"  {info.denied}", style="italic")
    if info.filter_text:
        text.append(f"  /{info.filter_text}", style="bold")
    if info.sort:
        text.append(f"  sort:{info.sort}")
    return text


def append_breach(text: Text, breach: str) -> None:
    """The SLO banner, before everything else on the line ("" shows nothing)."""
    if breach:
        text.append(f" ⚠ {printable(breach)} ", style="bold reverse red")
        text.append("  ")


def append_connection(text: Text, connection: Connection | None, detail_width: int = 60) -> None:
    """``● live``, ``connecting…`` or ``reconnecting since 03:12:09 (why)``."""
    if connection is None:
        text.append("connecting…", style="yellow")
    elif connection.live:
        text.append("● live", style="green")
    else:
        since = connection.since.astimezone(UTC).strftime("%H:%M:%S")
        text.append(f"reconnecting since {since}", style="bold red")
        if connection.detail:
            text.append(f" ({printable(connection.detail)[:detail_width]})", style="red")


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 3; background: $boost; padding: 0 1; }
    """

    def __init__(self, info: StatusInfo, *, id: str | None = None) -> None:
        super().__init__(status_text(info), id=id)
        self.info = info
        self._lines = 0

    def show(self, info: StatusInfo) -> None:
        if info == self.info:
            return
        self.info = info
        text = status_text(info)
        # A relayout of the screen only when the bar needs another number of lines: counts
        # change on every filter keystroke, the bar's height rarely does.
        width = max(1, self.content_region.width)
        lines = len(text.wrap(self.app.console, width))
        self.update(text, layout=lines != self._lines)
        self._lines = lines
