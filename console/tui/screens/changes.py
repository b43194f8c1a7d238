"""The Changes screen (``:changes``, ``c`` on the Fleet screen): what changed in every cluster of
the deck, newest first, each serving change next to its effect, and one key to undo one.

The timeline is read in a worker (``console.changes``: revisions, audit log, batch journals, the
store, warning events) when the clusters change and every few seconds; effects come from the
metrics history the deck keeps. The table shows the newest rows that match the filter (a few
hundred: the filter narrows the rest); the row under the cursor shows its deployments, its
numbers before and after, and the before/after plot.

``U`` undoes the change under the cursor: the plan (exactly what will change, what will not and
why) is shown for confirmation after the read-only and RBAC checks; a batch is undone by its
abort, on the Batch screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Input, Label, Static

from console.batch.plan import SloThresholds
from console.changes.effect import History, Series, series_of
from console.changes.model import Change, Key, Kind
from console.changes.sources import AuditFollower, LiveTimeline, Reader, StoreVersions
from console.changes.undo import UndoPlan, UndoRefused, plan_undo, undo
from console.core import guard
from console.core.session import cluster_name
from console.metrics.readings import DeploymentMetrics
from console.model import ModelDeployment
from console.tui.context import ClusterDecks, DeckContext, PaletteCommand
from console.tui.loader import Incomplete, LiveLoader, Loaded, describe
from console.tui.messages import AbortBatch, OpenDeployment
from console.tui.widgets.change_plot import ChangePlot
from console.tui.widgets.changes_table import ChangesTable
from console.tui.widgets.metrics_plot import history_source
from console.tui.widgets.where_line import WhereLine
from console.views.changes import (
    ChangeFilter,
    ChangeRow,
    build_rows,
    parse_change_filter,
    visible,
)
from console.views.format import printable

SHOWN_ROWS = 500  # the newest matches drawn; the filter reaches every change
REREAD_SECONDS = 5.0  # the audit log, journals and the store change without a cluster event


@dataclass(frozen=True)
class Timeline:
    rows: list[ChangeRow]
    problems: list[str]


@dataclass
class KeptTimeline:
    """What the deck keeps of the Changes screen between openings: the live timeline (with
    its audit log read so far and what each deployment's changes were made of) and the last
    rows built. The deck builds it once in the background after it starts, so the first
    ``c`` shows a full page at once, and marks it when a cluster changes, so a later opening
    rebuilds only what changed."""

    live: LiveTimeline
    rows: list[ChangeRow]
    clusters: ClusterDecks
    thresholds: SloThresholds

    def read(self) -> Timeline:
        """The rows now (blocking: from a worker); built again only when a source changed
        or there are numbers to move."""
        backends = {name: deck.backend for name, deck in self.clusters.decks.items()}
        before = self.live.rebuilds
        changes, problems = self.live.read(backends)
        history = metrics_history(self.clusters)
        if self.live.rebuilds != before or history is not None or not self.rows:
            previous = {r.change.id: r for r in self.rows}
            now = self.clusters.home.clock()
            self.rows = build_rows(changes, history, self.thresholds, now, previous)
        return Timeline(self.rows, problems)

    def follow(self) -> list[Callable[[], None]]:
        """Mark the timeline when any cluster changes; the functions that stop it."""
        return [
            deck.backend.subscribe(self.live.changed)
            for deck in self.clusters.decks.values()
            if deck.live
        ]


def kept_timeline(deck: DeckContext, clusters: ClusterDecks) -> KeptTimeline:
    """A new timeline of ``clusters``' changes, as the deck reads them."""
    profile = deck.profile
    reader = Reader(
        profile.name,
        only_cluster="" if clusters.several else cluster_name(profile),
        store=StoreVersions(profile.store.root),
        audit=AuditFollower(deck.audit_path),
        contexts={name: d.audit.context for name, d in clusters.decks.items()},
    )
    thresholds = SloThresholds.from_profile(profile.slo)
    return KeptTimeline(LiveTimeline(reader), [], clusters, thresholds)


def metrics_history(clusters: ClusterDecks) -> History | None:
    """The deck's metrics history of every cluster, by cluster; None without any."""
    sources = {c: history_source(d.metrics) for c, d in clusters.decks.items()}
    if not any(sources.values()):
        return None

    def history(cluster: str, key: Key) -> Sequence[DeploymentMetrics]:
        source = sources.get(cluster)
        return source.history(key) if source is not None else []

    return history


class ConfirmUndo(ModalScreen[bool]):
    """The undo's plan, to confirm: y undoes, n keeps things as they are."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Undo", id="changes.answer-true"),
        Binding("n,escape", "answer(False)", "Keep", id="changes.answer-false"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    ConfirmUndo { align: center middle; }
    #undo-box { width: 90%; max-width: 110; height: auto; max-height: 90%;
                border: thick $warning; background: $surface; padding: 0 1; }
    #undo-plan { height: auto; max-height: 20; overflow-y: auto; }
    #undo-buttons { height: auto; }
    #undo-buttons Button { margin-right: 1; }
    """

    def __init__(self, plan: UndoPlan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(id="undo-box"):
            yield Label(Text(printable(f"Undo change {self.plan.change.id}?")))
            yield Static(
                Text("\n".join(printable(line) for line in self.plan.lines())), id="undo-plan"
            )
            yield Static(
                "y undoes it (audited as undoing this change), n keeps things as they are."
            )
            with Horizontal(id="undo-buttons"):
                yield Button("Undo", id="undo-yes", variant="warning")
                yield Button("Keep", id="undo-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "undo-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ChangesScreen(Screen[None]):
    TITLE = "Changes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="changes.filter"),
        Binding("U", "undo", "Undo", id="changes.undo"),
        Binding("d", "detail", "Deployment", id="changes.detail"),
        Binding("ctrl+r", "reload", "Reload", id="changes.reload"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="changes.clear_filter"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    ChangesScreen #changes-title { height: 1; text-style: bold; }
    ChangesScreen #changes-table { height: 1fr; }
    ChangesScreen #changes-below { height: auto; max-height: 12; }
    ChangesScreen #changes-detail { width: 1fr; height: auto; max-height: 12; padding: 0 1; }
    ChangesScreen #changes-plot { width: 1fr; height: 12; }
    """

    def __init__(
        self,
        deck: DeckContext,
        clusters: ClusterDecks | None = None,
        kept: KeptTimeline | None = None,
    ) -> None:
        super().__init__()
        self.deck = deck
        self.clusters = clusters or ClusterDecks.single(deck)
        # The deck keeps the timeline between openings: the audit log is not read again,
        # and the rows show at once.
        self.kept = kept or kept_timeline(deck, self.clusters)
        self.live = self.kept.live
        self.rows: list[ChangeRow] = list(self.kept.rows)
        self._regressed = [r for r in self.rows if r.regressed]
        self.shown_rows: list[ChangeRow] = []
        self.change_filter: ChangeFilter = parse_change_filter("")
        self.problems: list[str] = []
        self.loader = LiveLoader(
            self, self._read, name="changes", what="the changes", spacing=2.0, partial_backoff=False
        )
        self._selected: str | None = None
        self._detailed: ChangeRow | None = None  # the row the detail and the plot show

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck, self.clusters)
        yield Static("Changes: reading…", id="changes-title")
        yield self.loader.error_line()
        yield Input(
            placeholder="filter: text, regex, kind=rollout, who=alice, via=other, regression=yes",
            id="changes-filter",
        )
        yield ChangesTable(id="changes-table")
        with Horizontal(id="changes-below"):
            yield Static("", id="changes-detail", markup=False)
            yield ChangePlot(id="changes-plot")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#changes-filter", Input).display = False
        if self.rows:
            self._apply()  # the rows kept from the last opening, until the first read
        self.table.focus()
        for deck in self.clusters.decks.values():
            if deck.live:
                self.loader.follow(partial(self._follow, deck))
        self.loader.start(every=REREAD_SECONDS if self.deck.live else None)

    def on_unmount(self) -> None:
        self.loader.stop()  # the clusters' change notifications end with the screen

    @property
    def table(self) -> ChangesTable:
        return self.query_one("#changes-table", ChangesTable)

    def _follow(self, deck: DeckContext, request: Callable[[], None]) -> Callable[[], None]:
        """A cluster's change marks the timeline for a rebuild, then asks for a read."""

        def changed() -> None:
            self.live.changed()
            request()

        return deck.backend.subscribe(changed)

    # -- reading (a worker) ---------------------------------------------------------------------
    def _read(self) -> Timeline | Incomplete[Timeline]:
        found = self.kept.read()
        return Incomplete(found, "; ".join(found.problems)) if found.problems else found

    def on_loaded(self, message: Loaded[Timeline]) -> None:
        self.rows = message.value.rows
        self._regressed = [r for r in self.rows if r.regressed]
        self.problems = message.value.problems
        self._apply()

    # -- the table ------------------------------------------------------------------------------
    def _apply(self) -> None:
        # One more than is shown: whether there are more, without reading every row.
        matching = visible(self.rows, self.change_filter, SHOWN_ROWS + 1)
        self.shown_rows = matching[:SHOWN_ROWS]
        # On the top row the cursor stays on the top row (the newest, as a feed does, also
        # when the rows kept from the last opening are replaced); elsewhere on its change.
        keep = self._selected if self.table.cursor > 0 else None
        self.table.show(self.shown_rows, keep=keep)
        total, shown = len(self.rows), len(self.shown_rows)
        # Regressions are few: counted over all of them, whatever the page shows.
        regressions = len(visible(self._regressed, self.change_filter))
        if not self.change_filter.active:
            what = f"{total}"
        elif len(matching) > shown:
            what = f"over {shown} of {total} match"
        else:
            what = f"{shown} of {total} match"
        more = f", newest {shown} shown (filter to narrow)" if len(matching) > shown else ""
        marked = f" · {regressions} followed by a regression" if regressions else ""
        # One line high whatever it says: no layout pass at each keystroke.
        self.query_one("#changes-title", Static).update(
            Text(
                f"Changes: {what} (newest first){more}{marked} · / filter · U undo · d deployment"
            ),
            layout=False,
        )

    def selected(self) -> ChangeRow | None:
        return self.table.cursor_row

    def on_changes_table_highlighted(self, _: ChangesTable.Highlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        row = self.selected()
        self._selected = row.change.id if row else None
        if row is not None and row is self._detailed:
            return  # the same row (a keystroke that left the top match in place)
        self._detailed = row
        detail = self.query_one("#changes-detail", Static)
        plot = self.query_one("#changes-plot", ChangePlot)
        if row is None:
            self._detail_text(detail, ["no change selected"])
            plot.show(None, "no change")
            return
        self._detail_text(detail, [printable(line) for line in detail_text(row)])
        history = metrics_history(self.clusters)
        series: Series | None = None
        if history is not None and row.change.serving:
            series = series_of(row.change, history, row.effect)
        plot.show(series, series.where if series else row.change.id)

    def _detail_text(self, detail: Static, lines: list[str]) -> None:
        """With a layout pass: the detail is as high as its lines wrapped to its width (it is
        only called when the selected row changed)."""
        detail.update(Text("\n".join(lines)))

    # -- filter ---------------------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#changes-filter", Input)
        box.display = True
        box.value = self.change_filter.text
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "changes-filter":
            self.set_filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "changes-filter":
            event.input.display = False
            self.table.focus()

    def set_filter(self, text: str) -> None:
        self.change_filter = parse_change_filter(text)
        if self.change_filter.error:
            self.app.notify(self.change_filter.error, severity="warning", timeout=3)
        self._apply()

    def action_clear_filter(self) -> None:
        box = self.query_one("#changes-filter", Input)
        if not box.display and not self.change_filter.active:
            self.app.pop_screen()  # esc with nothing to clear goes back, as everywhere
            return
        box.display = False
        box.value = ""
        self.set_filter("")
        self.table.focus()

    def on_key(self, event: events.Key) -> None:
        if isinstance(self.focused, Input) and event.key == "escape":
            event.stop()
            self.action_clear_filter()

    def action_reload(self) -> None:
        self.loader.request()

    def action_detail(self) -> None:
        row = self.selected()
        if row is None or not row.change.affected:
            return
        first = row.change.affected[0]
        self.post_message(OpenDeployment(first.namespace, first.name, first.cluster))

    # -- undo -----------------------------------------------------------------------------------
    def action_undo(self) -> None:
        row = self.selected()
        if row is None:
            return
        change = row.change
        if change.why_not:
            self.app.notify(
                printable(f"undo {change.id}: {change.why_not}"),
                severity="warning",
                timeout=6,
                markup=False,
            )
            return
        if change.kind is Kind.BATCH and change.abortable:
            self.post_message(AbortBatch(change.batch))
            return
        self._plan_undo(change)

    def _deck(self, cluster: str) -> DeckContext:
        return self.clusters.of(cluster)

    def _current(self, cluster: str, key: Key) -> ModelDeployment | None:
        return self._deck(cluster).backend.deployment(*key)

    @work(thread=True, group="changes-undo", exclusive=True, exit_on_error=False)
    def _plan_undo(self, change: Change) -> None:
        """The plan and the guard's checks, off the event loop (RBAC asks the API server)."""
        try:
            plan = plan_undo(change, self._current)
            for cluster in plan.clusters:
                steps = [s for s in plan.steps if s.affected.cluster == cluster]
                namespaces = sorted({s.affected.namespace for s in steps})
                self._deck(cluster).guard.check(steps[0].spec.action, namespaces)
        except (UndoRefused, guard.Refusal, LookupError) as exc:
            self.app.call_from_thread(self._say, str(exc))
            return
        except Exception as exc:  # a read that failed: said, nothing sent
            self.app.call_from_thread(self._say, f"undo {change.id}: {describe(exc)}")
            return
        self.app.call_from_thread(self._confirm, plan)

    def _confirm(self, plan: UndoPlan) -> None:
        if isinstance(self.app.screen, ConfirmUndo):
            return  # one undo asked at a time

        def answered(yes: bool | None) -> None:
            if yes:
                self._undo(plan)

        self.app.push_screen(ConfirmUndo(plan), answered)

    @work(thread=True, group="changes-undo", exclusive=True, exit_on_error=False)
    def _undo(self, plan: UndoPlan) -> None:
        try:
            outcomes, late = undo(plan, lambda cluster: self._deck(cluster).session, self._current)
        except (guard.Refusal, ValueError, LookupError) as exc:
            self.app.call_from_thread(self._say, str(exc))
            return
        except Exception as exc:
            self.app.call_from_thread(self._say, f"undo {plan.change.id}: {describe(exc)}")
            return
        results = [r for o in outcomes for r in o.results]
        failed = [r for r in results if not r.ok]
        problems = [o.audit_error for o in outcomes if o.audit_error]
        text = f"undo {plan.change.id}: {len(results) - len(failed)} of {len(results)} put back"
        if failed:
            text += "; " + "; ".join(f"{r.target}: {r.message}" for r in failed[:3])
        if plan.refused:
            text += f"; {len(plan.refused)} left as they are"
        if late:
            text += "; changed while you read the plan, left as they are: " + "; ".join(
                f"{a.where}: {why}" for a, why in late[:3]
            )
        if problems:
            text += f"; {problems[0]}"
        severity: SeverityLevel = "error" if failed or problems else "information"
        self.app.call_from_thread(self._say, text, severity)
        self.loader.request_from_thread()

    def _say(self, text: str, severity: SeverityLevel = "warning") -> None:
        self.app.notify(printable(text), severity=severity, timeout=8, markup=False)

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            ("Undo the selected change", "U", self.action_undo),
            ("Filter the changes", "/", self.action_filter),
            ("Open the change's deployment", "d", self.action_detail),
        ]


def detail_text(row: ChangeRow) -> list[str]:
    """The selected change in full: what, who, when, each deployment from → to, the numbers
    before and after, and whether it can be undone."""
    change = row.change
    via = "" if change.via_fleetdeck else " (not via fleetdeck)"
    when = change.time.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    lines = [
        f"{change.id}  {change.kind.value}: {change.what}",
        f"by {change.who or '?'}{via} at {'~' if change.approximate else ''}{when}",
    ]
    if change.batch and change.kind is not Kind.BATCH:
        lines.append(f"part of batch {change.batch}")
    if change.undoes:
        lines.append(f"undoes change {change.undoes}")
    for affected in change.affected[:4]:
        arrow = f": {affected.before or '?'} → {affected.after or '?'}" if affected.after else ""
        lines.append(f"  {affected.where}{arrow}")
    if len(change.affected) > 4:
        lines.append(f"  … and {len(change.affected) - 4} more")
    effect = row.effect
    if effect is not None:
        lines.append(f"effect on {effect.where}: {row.cell('EFFECT') or 'unmeasured'}")
        if effect.regression:
            lines.append(f"  regression: {effect.regression}")
    refusal = change.undo_refusal()
    lines.append(f"undo: {refusal}" if refusal else "U undoes it")
    return lines
