"""The Fleet overview (``:overview``, ``:top``, ``t`` on the Fleet screen): fleet-wide numbers
and plots, and the busiest and slowest deployments, from the metrics collector.

Fleet-wide latency comes from the summed histograms (the collector's ``FleetMetrics``), never
an average of percentiles. Redraws follow the collector's refreshes while this screen is shown
(see ``RefreshCoalescer``); hidden, it only remembers to catch up.

In a deck over several clusters it reads every cluster's collector: a line per cluster, the
fleet-wide numbers and plots from the clusters' histograms summed bucket by bucket
(``console.metrics.clusters``), and the top tables over every cluster's deployments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.metrics.clusters import fleet_history, fleet_wide
from console.tui.context import ClusterDecks, DeckContext, PaletteCommand
from console.tui.messages import OpenDeployment
from console.tui.widgets.metrics_plot import (
    Key,
    MetricsHistory,
    MetricsPanel,
    MetricsRefreshed,
    Narrowable,
    RefreshCoalescer,
    ReportsError,
    fmt,
    history_source,
    is_shown,
)
from console.tui.widgets.where_line import WhereLine

TOP_ROWS = 10
NO_COLLECTOR = (
    "no metrics collector: start the deck with metrics (the default profile's source) to see "
    "fleet numbers"
)


Measured = tuple[str, Any]  # (cluster, its DeploymentMetrics); the cluster is "" for one


def top_requests_in(
    snapshots: Mapping[str, Mapping[Key, Any]], count: int = TOP_ROWS
) -> list[Measured]:
    """The busiest deployments of every cluster first."""
    busy = [(c, m) for c, snap in snapshots.items() for m in snap.values() if m.requests_per_s > 0]
    return sorted(busy, key=lambda cm: (-cm[1].requests_per_s, cm[0], cm[1].key))[:count]


def top_p99_in(snapshots: Mapping[str, Mapping[Key, Any]], count: int = TOP_ROWS) -> list[Measured]:
    """The slowest deployments of every cluster first."""
    measured = [
        (c, m) for c, snap in snapshots.items() for m in snap.values() if m.p99_ms is not None
    ]
    return sorted(measured, key=lambda cm: (-cm[1].p99_ms, cm[0], cm[1].key))[:count]


def fleet_line(fleet: Any) -> str:
    if fleet is None:
        return "fleet: waiting for the first metrics refresh"
    failed = f" ({fleet.pods_failed} not answering)" if fleet.pods_failed else ""
    return f"fleet: {fleet.deployments} deployments measured, {fleet.pods} pods{failed}"


class OverviewScreen(Screen[None]):
    TITLE = "Overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,d", "detail", "Detail", id="overview.detail"),
        Binding("tab", "switch_table", "Other table", show=False, id="overview.switch_table"),
    ]

    def __init__(self, deck: DeckContext, clusters: ClusterDecks | None = None) -> None:
        super().__init__()
        self.deck = deck
        self.clusters = clusters if clusters is not None and clusters.several else None
        # Each cluster's collector by name ("" for a deck of one cluster).
        self.sources: dict[str, MetricsHistory] = {}
        decks = self.clusters.decks if self.clusters is not None else {"": deck}
        for name, each in decks.items():
            source = history_source(each.metrics)
            if source is not None:
                self.sources[name] = source
        self.draws = 0
        self._stale = False
        self._coalescer = RefreshCoalescer(self)
        self._unsubscribes: list[Any] = []

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck, self.clusters)
        yield Static(fleet_line(None), id="overview-fleet")
        yield MetricsPanel(id="overview-metrics")
        with Horizontal(id="overview-tops"):
            with Vertical():
                yield Static("busiest (req/s)", classes="overview-title")
                yield DataTable(id="overview-top-rps", cursor_type="row")
            with Vertical():
                yield Static("slowest (p99)", classes="overview-title")
                yield DataTable(id="overview-top-p99", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        columns = ("DEPLOYMENT", "REQ/S", "P99", "ERR%")
        for table_id in ("#overview-top-rps", "#overview-top-p99"):
            self.query_one(table_id, DataTable).add_columns(*columns)
        self.query_one("#overview-top-rps", DataTable).focus()
        if not self.sources:
            self.query_one("#overview-fleet", Static).update(NO_COLLECTOR)
            return
        if self.deck.live:
            self._unsubscribes = [s.subscribe(self._coalescer) for s in self.sources.values()]
        self.draw()

    def on_unmount(self) -> None:
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes = []

    def on_screen_resume(self) -> None:
        # The fleet as a whole is what this screen is about: every deployment is scraped while
        # it is shown (the Fleet screen narrows it again when it is back).
        for metrics in self.sources.values():
            if isinstance(metrics, Narrowable):  # a history that may or may not be Narrowable
                metrics.set_wanted(None)
        if self._stale:
            self.draw()

    def on_metrics_refreshed(self, _: MetricsRefreshed) -> None:
        self._coalescer.taken()
        if is_shown(self):
            self.draw()
        else:
            self._stale = True

    # -- drawing ------------------------------------------------------------------------------
    def draw(self) -> None:
        if not self.sources:
            return
        self._stale = False
        self.draws += 1
        lines = []
        for cluster, source in self.sources.items():
            error = source.error if isinstance(source, ReportsError) else ""
            line = fleet_line(source.fleet()) + (f"  source: {error}" if error else "")
            lines.append(f"{cluster}: {line}" if cluster else line)
        if self.clusters is not None:  # the clusters as one fleet, histograms summed
            # A cluster whose source fails now is left out: its last numbers are not current.
            answering = [
                s for s in self.sources.values() if not (isinstance(s, ReportsError) and s.error)
            ]
            totals = [f for f in (s.fleet() for s in answering) if f is not None]
            lines.insert(0, f"all clusters: {fleet_line(fleet_wide(totals))}")
            history = fleet_history([s.fleet_history() for s in answering])
        else:
            history = list(next(iter(self.sources.values())).fleet_history())
        self.query_one("#overview-fleet", Static).update("\n".join(lines))
        self.query_one(MetricsPanel).show(history)
        snapshots = {cluster: s.snapshot() for cluster, s in self.sources.items()}
        self._fill("#overview-top-rps", top_requests_in(snapshots))
        self._fill("#overview-top-p99", top_p99_in(snapshots))

    def _fill(self, table_id: str, rows: Sequence[Measured]) -> None:
        table = self.query_one(table_id, DataTable)
        cursor = table.cursor_row
        table.clear()
        for cluster, m in rows:
            name = "/".join(part for part in (cluster, m.namespace, m.name) if part)
            table.add_row(
                name,
                f"{m.requests_per_s:.1f}",
                fmt(m.p99_ms),
                fmt(m.error_percent, digits=2),
                key=name,
            )
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)

    # -- actions ------------------------------------------------------------------------------
    def _focused(self) -> tuple[str, str, str] | None:
        """(cluster, namespace, name) of the highlighted row; the cluster is this deck's own
        when it shows one."""
        table = self.focused if isinstance(self.focused, DataTable) else None
        if table is None or table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        parts = str(row_key.value).split("/")
        if self.clusters is not None and len(parts) == 3:
            return parts[0], parts[1], parts[2]
        namespace, _, name = str(row_key.value).partition("/")
        return self.deck.cluster, namespace, name

    def action_detail(self) -> None:
        found = self._focused()
        if found is not None:
            cluster, namespace, name = found
            self.post_message(OpenDeployment(namespace, name, cluster=cluster))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        # enter on a row: the table takes the key and says which row was chosen.
        event.stop()
        self.action_detail()

    def action_switch_table(self) -> None:
        rps = self.query_one("#overview-top-rps", DataTable)
        other = self.query_one("#overview-top-p99", DataTable) if rps.has_focus else rps
        other.focus()

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            ("Deployment detail", "of the highlighted row", self.action_detail),
            ("Other table", "busiest / slowest", self.action_switch_table),
        ]
