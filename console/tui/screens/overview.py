"""The Fleet overview (``:overview``, ``:top``, ``t`` on the Fleet screen): fleet-wide numbers
and plots, and the busiest and slowest deployments, from the metrics collector.

Fleet-wide latency comes from the summed histograms (the collector's ``FleetMetrics``), never
an average of percentiles. Redraws follow the collector's refreshes while this screen is shown
(see ``RefreshCoalescer``); hidden, it only remembers to catch up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from console.tui.context import DeckContext, PaletteCommand
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


def top_by_requests(snapshot: Mapping[Key, Any], count: int = TOP_ROWS) -> list[Any]:
    """The busiest deployments first (only those that served something)."""
    busy = [m for m in snapshot.values() if m.requests_per_s > 0]
    return sorted(busy, key=lambda m: (-m.requests_per_s, m.key))[:count]


def top_by_p99(snapshot: Mapping[Key, Any], count: int = TOP_ROWS) -> list[Any]:
    """The slowest deployments first (only those with a p99: requests in the window)."""
    measured = [m for m in snapshot.values() if m.p99_ms is not None]
    return sorted(measured, key=lambda m: (-m.p99_ms, m.key))[:count]


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

    def __init__(self, deck: DeckContext) -> None:
        super().__init__()
        self.deck = deck
        self.metrics: MetricsHistory | None = history_source(deck.metrics)
        self.draws = 0
        self._stale = False
        self._coalescer = RefreshCoalescer(self)
        self._unsubscribe: Any = None

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
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
        if self.metrics is None:
            self.query_one("#overview-fleet", Static).update(NO_COLLECTOR)
            return
        if self.deck.live:
            self._unsubscribe = self.metrics.subscribe(self._coalescer)
        self.draw()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def on_screen_resume(self) -> None:
        # The fleet as a whole is what this screen is about: every deployment is scraped while
        # it is shown (the Fleet screen narrows it again when it is back).
        metrics: object = self.metrics  # a history that may or may not be Narrowable
        if isinstance(metrics, Narrowable):
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
        if self.metrics is None:
            return
        self._stale = False
        self.draws += 1
        fleet = self.metrics.fleet()
        error = self.metrics.error if isinstance(self.metrics, ReportsError) else ""
        line = fleet_line(fleet) + (f"  source: {error}" if error else "")
        self.query_one("#overview-fleet", Static).update(line)
        self.query_one(MetricsPanel).show(self.metrics.fleet_history())
        snapshot = self.metrics.snapshot()
        self._fill("#overview-top-rps", top_by_requests(snapshot))
        self._fill("#overview-top-p99", top_by_p99(snapshot))

    def _fill(self, table_id: str, rows: Sequence[Any]) -> None:
        table = self.query_one(table_id, DataTable)
        cursor = table.cursor_row
        table.clear()
        for m in rows:
            table.add_row(
                f"{m.namespace}/{m.name}",
                f"{m.requests_per_s:.1f}",
                fmt(m.p99_ms),
                fmt(m.error_percent, digits=2),
                key=f"{m.namespace}/{m.name}",
            )
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)

    # -- actions ------------------------------------------------------------------------------
    def _focused_key(self) -> Key | None:
        table = self.focused if isinstance(self.focused, DataTable) else None
        if table is None or table.row_count == 0:
            return None
        row_key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        namespace, _, name = str(row_key.value).partition("/")
        return namespace, name

    def action_detail(self) -> None:
        key = self._focused_key()
        if key is not None:
            self.post_message(OpenDeployment(*key, cluster=self.deck.cluster))

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
