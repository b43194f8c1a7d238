"""The Fleet screen (home): every deployment as a live row; filter, sort, mark, act.

Data flow: the backend's change notification (from its notifier thread) asks the screen's
loader (``console/tui/loader.py``) for a refresh; it reads the fleet in a thread worker
(``read_fleet``), at most one read at a time and spaced by the time the last one took, so a
burst of changes is one refresh; the result comes back as ``Loaded`` and is applied in one go (a
failed read keeps the rows, says why and is retried). The cursor stays on the same deployment, the
marks are a set of keys, the filter and sort are re-applied: a refresh never moves the user.
"""

from __future__ import annotations

import contextlib
import dataclasses
from functools import partial
from typing import ClassVar

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Input

from console.batch.runner import Action
from console.model import DeploymentState
from console.tui.action_keys import (
    action_bindings,
    action_commands,
    chosen_action,
    offered,
    refuse_key,
)
from console.tui.context import DeckContext, PaletteCommand
from console.tui.loader import LiveLoader, Loaded
from console.tui.messages import OpenActionDialog, OpenDeployment, OpenDeploymentLogs, OpenOverview
from console.tui.permissions import Permissions, check_permissions
from console.tui.widgets.fleet_table import FleetTable
from console.tui.widgets.metrics_plot import Narrowable, is_shown
from console.tui.widgets.status_bar import StatusBar, StatusInfo
from console.views.fleet_data import FleetSnapshot, read_fleet
from console.views.fleet_rows import (
    COLUMNS,
    FleetRow,
    Key,
    RowFilter,
    SortOrder,
    count_rows,
    cursor_index,
    live_marks,
    parse_filter,
    visible_rows,
)

# Refreshes are spaced by this many times the last read's duration, so re-reading a large
# fleet however fast it changes takes a bounded share of a core: at 8 × the deck used 14 % of
# a core watching 5,000 deployments with 50 changes/s (the read plus applying it to the
# table); 16 × keeps it under 10 % at the price of a table up to ~5 s behind at that size.
REFRESH_SPACING = 16.0
AGE_REFRESH_SECONDS = 15.0
# Above this many rows only what is on screen (and any rollout) is scraped for metrics.
WANTED_ALL_UP_TO = 100
WANTED_CHECK_SECONDS = 0.5  # scrolling is noticed this often


class FleetScreen(Screen[None]):
    TITLE = "Fleet"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="fleet.filter"),
        Binding("space", "mark", "Mark", id="fleet.mark"),
        Binding("A", "mark_all", "Mark all", id="fleet.mark_all"),
        Binding("C", "clear_marks", "Clear marks", id="fleet.clear_marks"),
        Binding("o", "sort_next", "Sort", id="fleet.sort_next"),
        Binding("O", "sort_reverse", "Reverse sort", id="fleet.sort_reverse"),
        Binding("d,enter", "detail", "Detail", id="fleet.detail"),
        Binding("l", "logs", "Logs", id="fleet.logs"),
        Binding("t", "overview", "Overview", show=False, id="fleet.overview"),
        Binding("y", "copy", "Copy name", show=False, id="fleet.copy"),
        Binding(
            "ctrl+w", "toggle_wide", "Wide", show=False, id="fleet.toggle_wide"
        ),  # k9s' key for every column
        *action_bindings(),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="fleet.clear_filter"),
    ]

    def __init__(self, deck: DeckContext) -> None:
        super().__init__()
        self.deck = deck
        self.rows: list[FleetRow] = []
        self.widths: tuple[int, ...] = tuple(len(c.title) for c in COLUMNS)
        self.marks: set[Key] = set()
        self.row_filter: RowFilter = parse_filter("")
        self.order = SortOrder()
        self.snapshot: FleetSnapshot | None = None
        self.loader = LiveLoader(
            self,
            lambda: read_fleet(deck.backend, deck.metrics, deck.clock),
            name="fleet",
            what="the fleet",
            spacing=REFRESH_SPACING,
        )
        self._asked_namespaces: set[str] = set()
        self._unchecked: set[str] = set()  # namespaces asked about and not yet answered
        self.permission_check = LiveLoader(
            self,
            lambda: check_permissions(deck.backend, deck.user, sorted(self._unchecked)),
            name="fleet-permissions",
            what="what you may do (RBAC)",
        )
        self._counts = count_rows([])
        self._namespaces: list[str] = sorted(deck.namespaces)
        self.wanted: frozenset[Key] | None = None  # what the collector was last told to scrape
        self._wanted_sent = False

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield StatusBar(self._status_info(), id="fleet-status")
        yield self.loader.error_line()
        yield self.permission_check.error_line()
        yield FleetTable(id="fleet-table")
        yield Input(placeholder="filter: text, regex, or label=value", id="fleet-filter")
        yield Footer()

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def on_mount(self) -> None:
        self.query_one("#fleet-filter", Input).display = False
        self.table.focus()
        if self.deck.live:
            self.loader.follow(self.deck.backend.subscribe)
            if self.deck.metrics is not None:  # new numbers: the same coalesced refresh
                self.loader.follow(self.deck.metrics.subscribe)
            self.set_interval(1.0, self._show_status)
            self.set_interval(WANTED_CHECK_SECONDS, self.update_wanted)
        self.loader.start(every=AGE_REFRESH_SECONDS if self.deck.live else None)

    def on_unmount(self) -> None:
        self.loader.stop()

    # -- loading ------------------------------------------------------------------------------
    @property
    def loads(self) -> int:
        """Reads shown so far: tests wait on it, the bench counts it."""
        return self.loader.loads

    def request_load(self) -> None:
        self.loader.request()

    def on_loaded(self, message: Loaded[object]) -> None:
        found = message.value
        if isinstance(found, FleetSnapshot):
            self._show_snapshot(found)
        elif isinstance(found, Permissions):
            self._unchecked -= found.checked
            self.deck.permissions = self.deck.permissions.merged(found)
            self.refresh_bindings()
            self._show_status()

    def _show_snapshot(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot
        self.rows, self.widths = snapshot.rows, snapshot.widths
        self._counts = count_rows(self.rows)
        self._namespaces = sorted({r.key[0] for r in self.rows} | set(self.deck.namespaces))
        self.marks = live_marks(self.marks, self.rows)
        self._apply()
        self._check_new_namespaces()
        self._show_status()

    def _check_new_namespaces(self) -> None:
        if self.deck.read_only or not self.deck.live:
            return
        new = set(self._namespaces) - self._asked_namespaces
        if new:
            self._asked_namespaces |= new
            self._unchecked |= new
            self.permission_check.request()

    # -- showing ------------------------------------------------------------------------------
    def _apply(self) -> None:
        """Filter, sort and show, keeping the cursor on the deployment it was on."""
        table = self.table
        current = table.cursor_row
        view = visible_rows(self.rows, self.row_filter, self.order)
        cursor = cursor_index(view, current.key if current else None, table.cursor)
        table.show(
            view,
            cursor=cursor,
            marks=self.marks,
            widths=self.widths,
            order=self.order,
            single_namespace=len(self._namespaces) == 1,
        )
        self._show_status()
        self.update_wanted()

    def action_toggle_wide(self) -> None:
        self.table.set_wide(not self.table.wide)

    # -- what the collector scrapes -----------------------------------------------------------
    def on_screen_resume(self) -> None:
        self._wanted_sent = False  # another screen (the overview) may have widened it
        self.update_wanted()

    def wanted_keys(self) -> frozenset[Key] | None:
        """None (everything) for a fleet of up to ``WANTED_ALL_UP_TO`` rows; above that the
        rows on screen plus every deployment in a rollout."""
        if len(self.rows) <= WANTED_ALL_UP_TO:
            return None
        table = self.table
        top = int(table.scroll_y)
        shown = max(1, table.scrollable_content_region.height - 1)  # minus the header
        visible = {r.key for r in table.view[top : top + shown]}
        rolling = {r.key for r in self.rows if r.state is DeploymentState.PROGRESSING}
        return frozenset(visible | rolling)

    def update_wanted(self) -> None:
        metrics: object = self.deck.metrics  # a feed that may or may not be Narrowable
        if not isinstance(metrics, Narrowable) or not is_shown(self):
            return
        wanted = self.wanted_keys()
        if self._wanted_sent and wanted == self.wanted:
            return
        self.wanted, self._wanted_sent = wanted, True
        metrics.set_wanted(wanted)

    def _status_info(self) -> StatusInfo:
        shown = len(self.table.view) if self.is_mounted else 0
        counts = dataclasses.replace(self._counts, shown=shown, marked=len(self.marks))
        connection = self.snapshot.connection if self.snapshot else None
        if self.deck.live and self.is_mounted:
            with contextlib.suppress(Exception):  # keep the last known state
                connection = self.deck.backend.connection()
        namespaces = self._namespaces_shown()
        return StatusInfo(
            profile=self.deck.profile.name,
            context=self.deck.context,
            context_color=self.deck.context_color,
            namespaces=self.deck.namespaces,
            read_only=self.deck.read_only,
            counts=counts,
            connection=connection,
            filter_text=self.row_filter.text.strip(),
            sort=f"{self.order.column}{' desc' if self.order.descending else ''}",
            denied=self.deck.permissions.summary(namespaces),
        )

    def _namespaces_shown(self) -> list[str]:
        return self._namespaces

    def _show_status(self) -> None:
        self.query_one(StatusBar).show(self._status_info())

    # -- targets ------------------------------------------------------------------------------
    def targets(self) -> list[FleetRow]:
        """The marked rows (in the table's order, filtered-out marks included last), or the
        cursor row when nothing is marked."""
        if self.marks:
            shown = [r for r in self.table.view if r.key in self.marks]
            keys = {r.key for r in shown}
            hidden = [r for r in self.rows if r.key in self.marks and r.key not in keys]
            return shown + hidden
        row = self.table.cursor_row
        return [row] if row else []

    def why_not(self, action: Action) -> str:
        namespaces = {r.key[0] for r in self.targets()} or set(self._namespaces_shown())
        return self.deck.permissions.why_not(action, sorted(namespaces))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return offered(action, parameters, self.why_not)

    def on_key(self, event: events.Key) -> None:
        if not isinstance(self.focused, Input):  # typing a filter is not acting
            refuse_key(event, self.app, self.why_not)

    # -- actions ------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = True
        box.value = self.row_filter.text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "fleet-filter":
            self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "fleet-filter":
            event.input.display = False
            self.table.focus()

    def set_filter(self, text: str) -> None:
        self.row_filter = parse_filter(text)
        if self.row_filter.error:
            self.app.notify(self.row_filter.error, severity="warning", timeout=3)
        self._apply()

    def action_clear_filter(self) -> None:
        box = self.query_one("#fleet-filter", Input)
        box.display = False
        self.table.focus()
        if self.row_filter.active:
            box.value = ""
            self.set_filter("")

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        if descending is None:  # the same column again flips the order
            descending = not self.order.descending if column == self.order.column else False
        self.order = SortOrder(column, descending)
        self._apply()

    def on_fleet_table_header_clicked(self, message: FleetTable.HeaderClicked) -> None:
        self.sort_by(message.column)

    def action_sort_next(self) -> None:
        self.order = self.order.next_column()
        self._apply()

    def action_sort_reverse(self) -> None:
        self.order = self.order.reversed()
        self._apply()

    def action_mark(self) -> None:
        row = self.table.cursor_row
        if row is None:
            return
        self.marks ^= {row.key}
        self.table.refresh_marks(self.marks)
        self.table.action_cursor_down()
        self._show_status()

    def action_mark_all(self) -> None:
        self.marks |= {r.key for r in self.table.view}
        self.table.refresh_marks(self.marks)
        self._show_status()

    def action_clear_marks(self) -> None:
        self.marks = set()
        self.table.refresh_marks(self.marks)
        self._show_status()

    def action_detail(self) -> None:
        row = self.table.cursor_row
        if row is not None:
            self.post_message(OpenDeployment(*row.key))

    def action_overview(self) -> None:
        self.post_message(OpenOverview())

    def action_logs(self) -> None:
        row = self.table.cursor_row
        if row is not None:
            self.post_message(OpenDeploymentLogs(*row.key))

    def action_copy(self) -> None:
        names = [f"{r.key[0]}/{r.key[1]}" for r in self.targets()]
        if names:
            self.app.copy_to_clipboard("\n".join(names))  # OSC 52: works over SSH
            self.app.notify(f"copied {len(names)} name(s)", timeout=2)

    def action_act(self, action: str) -> None:
        chosen = chosen_action(self.app, action, self.why_not)
        if chosen is None:
            return
        targets = self.targets()
        if not targets:
            self.app.notify("no deployment under the cursor", timeout=3)
            return
        self.post_message(OpenActionDialog(chosen, [r.deployment for r in targets]))

    # -- the command palette ------------------------------------------------------------------
    def palette_commands(self) -> list[PaletteCommand]:
        commands = action_commands(
            self.app, self.why_not, self.action_act, "(marked rows or cursor row)"
        )
        for column in COLUMNS:
            commands.append(
                (
                    f"Sort by {column.title.lower()}",
                    "again to reverse",
                    partial(self.sort_by, column.key),
                )
            )
        commands += [
            ("Filter", "substring, regex or label=value", self.action_filter),
            ("Clear filter", "show every deployment", self.action_clear_filter),
            ("Mark all shown", "mark every row the filter shows", self.action_mark_all),
            ("Clear marks", "unmark every row", self.action_clear_marks),
            ("Deployment detail", "revisions, pods, events, conditions", self.action_detail),
            ("Logs of the cursor row", "live tail of its pods", self.action_logs),
            ("Fleet overview", "fleet-wide numbers, plots, top deployments", self.action_overview),
            ("Copy names", "marked rows or cursor row, via OSC 52", self.action_copy),
        ]
        return commands
