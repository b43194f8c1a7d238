"""The Fleet screen (home): every deployment as a live row; filter, sort, mark, act.

Data flow: the backend's change notification (from its notifier thread) asks the screen's
loader (``console/tui/loader.py``) for a refresh; it reads the fleet in a thread worker
(``read_fleet``), at most one read at a time and spaced by the time the last one took, so a
burst of changes is one refresh; the result comes back as ``Loaded`` and is applied in one go (a
failed read keeps the rows, says why and is retried). The cursor stays on the same deployment, the
marks are a set of keys, the filter and sort are re-applied: a refresh never moves the user.

A deck over several clusters shows them in one table (``FleetReader``): a CLUSTER column, the
filter's ``cluster=NAME``, each cluster's connection in the header, a cluster that is not
answering marks its own rows stale and never holds up the others. What a row opens (detail,
logs, an action) works on the cluster the row came from, with that cluster's RBAC answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
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
from console.tui.context import ClusterDecks, DeckContext, PaletteCommand, breach_of
from console.tui.loader import Incomplete, LiveLoader, Loaded
from console.tui.messages import (
    OpenActionDialog,
    OpenChanges,
    OpenDeployment,
    OpenDeploymentLogs,
    OpenOverview,
)
from console.tui.permissions import Permissions, check_permissions
from console.tui.widgets.fleet_table import FleetTable
from console.tui.widgets.metrics_plot import Narrowable, is_shown
from console.tui.widgets.status_bar import StatusBar, StatusInfo
from console.views.fleet_data import (
    ClusterFeed,
    ClusterLink,
    FleetReader,
    FleetSnapshot,
    read_fleet,
)
from console.views.fleet_rows import (
    COLUMNS,
    FleetRow,
    Key,
    RowFilter,
    RowKey,
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


@dataclass(frozen=True)
class ClusterPermissions:
    """RBAC answers for newly seen namespaces, by cluster ("" in a one-cluster deck)."""

    answers: dict[str, Permissions]


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
        Binding("c", "changes", "Changes", id="fleet.changes"),
        Binding("y", "copy", "Copy name", show=False, id="fleet.copy"),
        Binding(
            "ctrl+w", "toggle_wide", "Wide", show=False, id="fleet.toggle_wide"
        ),  # k9s' key for every column
        *action_bindings(),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="fleet.clear_filter"),
    ]

    def __init__(self, deck: DeckContext, clusters: ClusterDecks | None = None) -> None:
        super().__init__()
        self.deck = deck  # the first cluster's: the profile, the clock, live or a snapshot
        self.clusters = clusters or ClusterDecks.single(deck)
        self.rows: list[FleetRow] = []
        self.widths: tuple[int, ...] = tuple(len(c.title) for c in COLUMNS)
        self.marks: set[RowKey] = set()
        self.row_filter: RowFilter = parse_filter("")
        self.order = SortOrder()
        self.snapshot: FleetSnapshot | None = None
        self.loader = LiveLoader(
            self,
            self._reader(),
            name="fleet",
            what="the fleet",
            spacing=REFRESH_SPACING,
            partial_backoff=False,  # one cluster failing never slows the others' rows
        )
        self._asked: set[tuple[str, str]] = set()  # (cluster, namespace) asked about RBAC
        self._unchecked: dict[str, set[str]] = {}  # by cluster: asked, not yet answered
        self.permission_check = LiveLoader(
            self,
            self._check_permissions,
            name="fleet-permissions",
            what="what you may do (RBAC)",
        )
        self._counts = count_rows([])
        self._namespaces: list[str] = sorted(deck.namespaces)
        # What each cluster's collector was last told to scrape.
        self.wanted: dict[str, frozenset[Key] | None] = {}
        self._wanted_sent = False

    def _reader(self) -> Callable[[], FleetSnapshot | Incomplete[FleetSnapshot]]:
        if not self.clusters.several:
            deck = self.deck
            return lambda: read_fleet(deck.backend, deck.metrics, deck.clock)
        feeds = [ClusterFeed(n, d.backend, d.metrics) for n, d in self.clusters.decks.items()]
        read_all = FleetReader(feeds, self.clusters.unavailable, self.deck.clock)

        def read() -> FleetSnapshot | Incomplete[FleetSnapshot]:
            snapshot = read_all()
            return (
                Incomplete(snapshot, "; ".join(snapshot.problems))
                if snapshot.problems
                else snapshot
            )

        return read

    def _check_permissions(self) -> ClusterPermissions:
        """RBAC answers for every cluster's new namespaces (blocking: from a worker)."""
        asked = {cluster: sorted(spaces) for cluster, spaces in self._unchecked.items() if spaces}
        return ClusterPermissions(
            {
                cluster: check_permissions(deck.backend, deck.user, asked[cluster])
                for cluster, deck in self.clusters.decks.items()
                if cluster in asked
            }
        )

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
            for deck in self.clusters.decks.values():
                self.loader.follow(deck.backend.subscribe)
                if deck.metrics is not None:  # new numbers: the same coalesced refresh
                    self.loader.follow(deck.metrics.subscribe)
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
        elif isinstance(found, ClusterPermissions):
            for cluster, answers in found.answers.items():
                self._unchecked[cluster] -= answers.checked
                deck = self.clusters.of(cluster)
                deck.permissions = deck.permissions.merged(answers)
            self.refresh_bindings()
            self._show_status()

    def _show_snapshot(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot
        self.rows, self.widths = snapshot.rows, snapshot.widths
        self._counts = count_rows(self.rows)
        self._namespaces = sorted(
            {r.deployment.namespace for r in self.rows} | set(self.deck.namespaces)
        )
        self.marks = live_marks(self.marks, self.rows)
        self._apply()
        self._check_new_namespaces()
        self._show_status()

    def _check_new_namespaces(self) -> None:
        """Ask each cluster what the user may do in namespaces it has not been asked about."""
        if not self.deck.live:
            return
        decks = self.clusters.decks
        seen = {(r.deployment.cluster, r.deployment.namespace) for r in self.rows}
        seen |= {(c, ns) for c, deck in decks.items() for ns in deck.namespaces}
        new = {(c, ns) for c, ns in seen - self._asked if c in decks and not decks[c].read_only}
        if new:
            self._asked |= new
            for cluster, namespace in new:
                self._unchecked.setdefault(cluster, set()).add(namespace)
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
            several_clusters=self.clusters.several,
        )
        self._show_status()
        self.update_wanted()

    def action_toggle_wide(self) -> None:
        self.table.set_wide(not self.table.wide)

    # -- what the collector scrapes -----------------------------------------------------------
    def on_screen_resume(self) -> None:
        self._wanted_sent = False  # another screen (the overview) may have widened it
        self.update_wanted()

    def wanted_by_cluster(self) -> dict[str, frozenset[Key] | None]:
        """What each cluster's collector scrapes: None (everything) for a fleet of up to
        ``WANTED_ALL_UP_TO`` rows; above that its rows on screen and in a rollout (gathered
        once on the event loop, then split by cluster)."""
        if len(self.rows) <= WANTED_ALL_UP_TO:
            return dict.fromkeys(self.clusters.decks)
        table = self.table
        top = int(table.scroll_y)
        shown = max(1, table.scrollable_content_region.height - 1)  # minus the header
        rows = [*table.view[top : top + shown]]
        rows += [r for r in self.rows if r.state is DeploymentState.PROGRESSING]
        wanted: dict[str, set[Key]] = {cluster: set() for cluster in self.clusters.decks}
        for row in rows:
            wanted.setdefault(row.deployment.cluster, set()).add(row.deployment.key)
        return {cluster: frozenset(keys) for cluster, keys in wanted.items()}

    def update_wanted(self) -> None:
        if not is_shown(self):
            return
        wanted = self.wanted_by_cluster()
        if self._wanted_sent and wanted == self.wanted:
            return
        self.wanted, self._wanted_sent = wanted, True
        for cluster, keys in wanted.items():
            deck = self.clusters.decks.get(cluster)
            metrics: object = deck.metrics if deck else None  # may not be Narrowable
            if isinstance(metrics, Narrowable):
                metrics.set_wanted(keys)

    def _status_info(self) -> StatusInfo:
        shown = len(self.table.view) if self.is_mounted else 0
        counts = dataclasses.replace(self._counts, shown=shown, marked=len(self.marks))
        connection = self.snapshot.connection if self.snapshot else None
        if self.deck.live and self.is_mounted:
            with contextlib.suppress(Exception):  # keep the last known state
                connection = self.deck.backend.connection()
        info = StatusInfo(
            profile=self.deck.profile.name,
            context=self.deck.context,
            context_color=self.deck.context_color,
            namespaces=self.deck.namespaces,
            read_only=self.deck.read_only,
            counts=counts,
            connection=connection,
            filter_text=self.row_filter.text.strip(),
            sort=f"{self.order.column}{' desc' if self.order.descending else ''}",
            denied=self.deck.permissions.summary(self._namespaces),
            breach=breach_of(self.app) if self.is_mounted else "",
        )
        if not self.clusters.several:
            return info
        decks = self.clusters.decks.values()
        everywhere = any(not d.namespaces for d in decks)  # one cluster reads all of them
        return dataclasses.replace(
            info,
            context=None,  # each cluster is named, with its state
            context_color="",
            namespaces=()
            if everywhere
            else tuple(sorted({n for d in decks for n in d.namespaces})),
            read_only=all(d.read_only for d in self.clusters.decks.values()),
            clusters=self._cluster_links(),
            denied=self._denied_by_cluster(),
        )

    def _cluster_links(self) -> tuple[ClusterLink, ...]:
        """Each cluster's connection as of now (its cache knows; nothing waits on a server)."""
        last = {link.name: link for link in self.snapshot.clusters} if self.snapshot else {}
        links = []
        for name, deck in self.clusters.decks.items():
            link = last.get(name, ClusterLink(name, None, "connecting"))
            if deck.live and self.is_mounted:
                with contextlib.suppress(Exception):  # keep the last known state
                    link = ClusterLink(name, deck.backend.connection())
            links.append(link)
        unavailable = self.clusters.unavailable.items()
        return (*links, *(ClusterLink(name, None, why) for name, why in unavailable))

    def _denied_by_cluster(self) -> str:
        """What RBAC or read-only removes, cluster by cluster ("" when nothing anywhere)."""
        spaces: dict[str, set[str]] = {}
        for row in self.rows:
            spaces.setdefault(row.deployment.cluster, set()).add(row.deployment.namespace)
        parts = []
        for cluster, deck in self.clusters.decks.items():
            if deck.read_only:
                parts.append(f"{cluster}: read-only")
            elif summary := deck.permissions.summary(sorted(spaces.get(cluster, ()))):
                parts.append(f"{cluster}: {summary}")
        return "; ".join(parts)

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
        """Why ``action`` is not offered on the targets: asked of the cluster they are in, with
        that cluster's answers (read-only, RBAC). The deck acts on one cluster at a time."""
        by_cluster: dict[str, set[str]] = {}
        for row in self.targets():
            by_cluster.setdefault(row.deployment.cluster, set()).add(row.deployment.namespace)
        if len(by_cluster) > 1:
            return (
                f"the marked rows are in clusters {', '.join(sorted(by_cluster))}: the deck acts "
                "on one cluster at a time (mark one cluster's rows, or filter cluster=NAME; "
                "`fleetdeck rollout --wave-by cluster` goes cluster by cluster)"
            )
        if not by_cluster:  # nothing under the cursor: what the home cluster allows
            return self.deck.permissions.why_not(action, self._namespaces)
        [(cluster, namespaces)] = by_cluster.items()
        try:
            deck = self.clusters.of(cluster)
        except LookupError as exc:
            return str(exc)
        reason = deck.permissions.why_not(action, sorted(namespaces))
        return f"cluster {cluster}: {reason}" if reason and self.clusters.several else reason

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
        # CLUSTER is not drawn in a one-cluster deck: sorting by it would look like nothing.
        hidden = frozenset() if self.clusters.several else frozenset({"cluster"})
        self.order = self.order.next_column(hidden=hidden)
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
            d = row.deployment
            self.post_message(OpenDeployment(d.namespace, d.name, d.cluster))

    def action_overview(self) -> None:
        self.post_message(OpenOverview())  # every cluster's numbers, and the fleet's

    def action_changes(self) -> None:
        self.post_message(OpenChanges())  # what changed in every cluster, newest first

    def action_logs(self) -> None:
        row = self.table.cursor_row
        if row is not None:
            d = row.deployment
            self.post_message(OpenDeploymentLogs(d.namespace, d.name, d.cluster))

    def action_copy(self) -> None:
        # CLUSTER/NAMESPACE/NAME in a deck over several: what the CLI takes as a target.
        names = ["/".join(part for part in r.key if part) for r in self.targets()]
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
