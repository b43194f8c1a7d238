"""The Batch screen: one batch's plan, waves, per-target state, SLO gates and event log, with
halt, resume and abort; and ``:batches``, every journal on disk.

A batch runs in a thread worker owned by the app (:class:`BatchRuns`), not by the screen, so
``esc`` leaves it running and ``:batches`` finds it again. The executor's events are appended to
a list on its thread; the screen drains that list on a timer, so a thousand targets changing at
once cost one repaint, never one message each. What a screen shows when it opens is the journal
(``replay``), then the events that follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Label, Log, Static

from console.batch import lifecycle
from console.batch.executor import BatchEvent, EventKind
from console.batch.journal import (
    BatchState,
    Journal,
    JournalError,
    Replay,
    Step,
    TargetRecord,
    list_journals,
)
from console.batch.lifecycle import BatchRun, runs_of
from console.batch.lifecycle import BatchRuns as BatchRuns  # the app keeps them (app.py)
from console.batch.runner import Target, target_name
from console.core import guard
from console.tui.context import ClusterDecks, DeckContext
from console.tui.loader import LiveLoader, Loaded
from console.tui.widgets.where_line import WhereLine
from console.views.fleet_data import read_metrics
from console.views.format import printable

DRAIN_SECONDS = 0.25
GATE_EVERY = 4  # drains between refreshes of every target's gate numbers
ELSEWHERE_EVERY = 8  # drains between journal reads of a batch another process runs
LOG_LINES = 5000
# What the operator reads for each step.
STEP_WORDS: dict[Step, str] = {
    Step.PENDING: "pending",
    Step.SENT: "running",
    Step.APPLIED: "running",
    Step.HEALTHY: "ok",
    Step.FAILED: "failed",
    Step.UNDOING: "rolling back",
    Step.ROLLED_BACK: "rolled back",
    Step.PAUSED: "paused",
    Step.UNDO_FAILED: "UNDO FAILED",
}
_QUIET = frozenset({Step.SENT, Step.APPLIED})  # per-target chatter kept out of the log


# -- what the screen shows --------------------------------------------------------------------
def wave_lines(state: Replay) -> list[str]:
    """One line per wave: its size, where it stands and its targets' states."""
    lines = []
    for number, wave in enumerate(state.plan.waves):
        words = [STEP_WORDS[state.targets[t].step] for t in wave]
        counts = ", ".join(f"{words.count(w)} {w}" for w in dict.fromkeys(words))
        if number in state.waves_passed:
            mark = "done"
        elif number == state.wave and state.state is BatchState.RUNNING:
            mark = "running"
        elif number == state.wave:
            mark = state.state.value
        else:
            mark = "waiting"
        lines.append(f"wave {number + 1} ({len(wave)}): {mark} - {counts}")
    return lines


def apply_event(state: Replay, event: BatchEvent) -> None:
    """Fold one executor event into the screen's copy of the batch."""
    if event.kind is EventKind.WAVE_STARTED and event.wave is not None:
        state.wave = event.wave
    elif event.kind is EventKind.WAVE_PASSED and event.wave is not None:
        state.waves_passed.add(event.wave)
    elif event.kind is EventKind.STARTED:
        state.state, state.reason = BatchState.RUNNING, ""
    elif event.kind is EventKind.HALTED:
        state.state, state.reason = BatchState.HALTED, event.message
    elif event.kind is EventKind.ABORTED:
        state.state, state.reason = BatchState.ABORTED, event.message
    elif event.kind is EventKind.DONE:
        state.state, state.reason = BatchState.DONE, ""
    if event.target and event.step is not None:
        namespace, _, name = event.target.partition("/")
        item = state.targets.setdefault((namespace, name), TargetRecord())
        item.step = event.step
        if event.step is Step.FAILED:
            item.reason = event.message
        else:
            item.message = event.message


def event_line(event: BatchEvent) -> str | None:
    if event.kind is EventKind.TARGET and event.step in _QUIET:
        return None
    where = f"{event.target}: {STEP_WORDS[event.step]}: " if event.target and event.step else ""
    return printable(f"{where}{event.message}")  # a message quotes the cluster


def journal_lines(state: Replay) -> list[str]:
    """What a batch opened from its journal has to say: its state and every failure's reason."""
    lines = [
        printable(
            f"from the journal: {state.state.value}"
            + (f" - {state.reason}" if state.reason else "")
        )
    ]
    for target in state.plan.targets:
        item = state.targets[target]
        if item.reason:
            lines.append(
                printable(f"{target_name(target)}: {STEP_WORDS[item.step]}: {item.reason}")
            )
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class GateCell:
    """A target's live numbers next to its baseline from before its wave (what the gates
    compare)."""

    requests_per_s: float | None
    now_p99: float | None
    base_p99: float | None
    now_errors: float | None
    base_errors: float | None

    def text(self) -> str:
        if self.requests_per_s is None and self.now_p99 is None and self.base_p99 is None:
            return "-"
        rate = "-" if self.requests_per_s is None else f"{self.requests_per_s:.0f}"
        return (
            f"{rate} req/s  p99 {_ms(self.now_p99)}/{_ms(self.base_p99)} ms  "
            f"err {_pct(self.now_errors)}/{_pct(self.base_errors)} %"
        )


class ConfirmAbort(ModalScreen[bool]):
    """``a`` asks first: an abort rolls back everything the batch changed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Abort the batch", id="batch.answer-true"),
        Binding("n,escape", "answer(False)", "Keep it", id="batch.answer-false"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    ConfirmAbort { align: center middle; }
    #abort-box { width: 70; height: auto; border: thick $error; background: $surface;
                 padding: 0 1; }
    #abort-buttons { height: auto; }
    #abort-buttons Button { margin-right: 1; }
    """

    def __init__(self, batch_id: str, changed: int) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.changed = changed

    def compose(self) -> ComposeResult:
        with Vertical(id="abort-box"):
            yield Label(f"Abort batch {self.batch_id}?")
            yield Static(
                f"It stops and rolls back the {self.changed} deployments it changed "
                "to the revision each had before. y aborts, n keeps it."
            )
            with Horizontal(id="abort-buttons"):
                yield Button("Abort and roll back", id="abort-yes", variant="error")
                yield Button("Keep it", id="abort-no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "abort-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class BatchScreen(Screen[None]):
    TITLE = "Batch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "halt", "Halt", id="batch.halt"),
        Binding("r", "resume", "Resume", id="batch.resume"),
        Binding("a", "abort", "Abort", id="batch.abort"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    BatchScreen #batch-title { height: 1; text-style: bold; }
    BatchScreen #batch-plan { height: auto; color: $text-muted; }
    BatchScreen #batch-waves { height: auto; max-height: 6; }
    BatchScreen #batch-targets { height: 1fr; min-height: 4; }
    BatchScreen #batch-log { height: 6; }
    """

    def __init__(self, deck: DeckContext, run: BatchRun) -> None:
        super().__init__()
        self.deck = deck
        self.batch_run = run
        self.state: Replay | None = None
        self.seen = 0
        self.shown_final: Replay | None = None
        self._ticks = 0

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
        yield Static("", id="batch-title")
        yield Static("", id="batch-plan")
        yield Static("", id="batch-waves")
        yield DataTable(id="batch-targets", cursor_type="row", zebra_stripes=True)
        yield Log(id="batch-log", max_lines=LOG_LINES)
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[str | Text] = self.query_one("#batch-targets", DataTable)
        table.add_column("target", key="target")
        table.add_column("wave", key="wave")
        table.add_column("state", key="state")
        if self.deck.metrics is not None:  # no collector, no numbers: the room goes to reasons
            table.add_column("live · gate now/base", key="gate")
        table.add_column("reason", key="reason")
        self.seen = len(self.batch_run.events)  # events after this are newer than the replay below
        try:
            self.state = self.batch_run.final or self.batch_run.journal.replay()
        except (JournalError, OSError, ValueError, KeyError) as exc:
            self.query_one("#batch-title", Static).update(
                Text(printable(f"batch {self.batch_run.id}: {exc}"))
            )
            return
        self.shown_final = self.batch_run.final
        log = self.query_one("#batch-log", Log)
        earlier = self.batch_run.events[max(0, self.seen - 200) : self.seen]
        if not earlier:  # opened from its journal: what it says went wrong
            log.write_lines(journal_lines(self.state))
        for event in earlier:
            if (line := event_line(event)) is not None:
                log.write_line(line)
        plan = self.state.plan
        blank = [""] * (len(table.columns) - 2)
        for target in plan.targets:
            name = target_name(target)
            table.add_row(Text(printable(name)), str(plan.wave_of(target) + 1), *blank, key=name)
        self._show(plan.targets)
        self.set_interval(DRAIN_SECONDS, self._drain)

    # -- keeping up with the batch --------------------------------------------------------------
    def _drain(self) -> None:
        if self.state is None:
            return
        events = self.batch_run.events_since(self.seen)
        self.seen += len(events)
        changed: dict[Target, None] = {}
        log = self.query_one("#batch-log", Log)
        lines = []
        for event in events:
            apply_event(self.state, event)
            if event.target:
                namespace, _, name = event.target.partition("/")
                changed[(namespace, name)] = None
            if (line := event_line(event)) is not None:
                lines.append(line)
        if lines:
            log.write_lines(lines)
        final = self.batch_run.final
        if final is not None and final is not self.shown_final:
            self.shown_final = final
            self.state = final  # what the journal says is what stays on screen
            self._show(self.state.plan.targets)
            return
        self._ticks += 1
        if self._ticks % ELSEWHERE_EVERY == 0 and self._run_elsewhere():
            self.state = self.batch_run.journal.replay()  # another process writes the journal
            self._show(self.state.plan.targets)
        elif self._ticks % GATE_EVERY == 0:  # the gate numbers move without events
            self._show(self.state.plan.targets)
        elif events:
            self._show(list(changed))

    def _run_elsewhere(self) -> bool:
        """A batch another process (the CLI, another deck) runs: only its journal tells."""
        if self.batch_run.running or self.state is None:
            return False
        return self.state.state is BatchState.RUNNING or self.batch_run.journal.holder() is not None

    def _show(self, targets: Sequence[Target]) -> None:
        state = self.state
        if state is None:
            return
        running = " (running here)" if self.batch_run.running else ""
        reason = f" - {state.reason}" if state.reason else ""
        # Text, never markup, and printable: the reason quotes the cluster.
        self.query_one("#batch-title", Static).update(
            Text(printable(f"batch {state.id}: {state.state.value}{running}{reason}"))
        )
        plan_lines = "\n".join(printable(line) for line in state.plan.describe())
        self.query_one("#batch-plan", Static).update(Text(plan_lines))
        self.query_one("#batch-waves", Static).update("\n".join(wave_lines(state)))
        table: DataTable[str | Text] = self.query_one("#batch-targets", DataTable)
        gates = self._gates(state, targets)
        for target in targets:
            item = state.targets.get(target, TargetRecord())
            key = target_name(target)
            word = STEP_WORDS[item.step]
            style = {"failed": "bold red", "UNDO FAILED": "bold red", "ok": "green"}.get(word, "")
            table.update_cell(key, "state", Text(word, style=style))
            table.update_cell(key, "reason", Text(printable(item.reason)))
            if gates:
                table.update_cell(key, "gate", gates.get(target, "-"))

    def _gates(self, state: Replay, targets: Sequence[Target]) -> dict[Target, str]:
        """Each target's p99 and error % now against its baseline from before its wave."""
        if self.deck.metrics is None:
            return {}
        # read_metrics: the collector's numbers typed, none when it fails (no numbers is no
        # reason to stop showing the batch).
        snapshot = read_metrics(self.deck.metrics)
        cells = {}
        baselines = {**state.baselines, **self.batch_run.baselines()}
        for target in targets:
            now = snapshot.get(target)
            base = baselines.get(target, (None, None))
            cell = GateCell(
                now.rps if now else None,
                now.p99_ms if now else None,
                base[0],
                now.error_percent if now else None,
                base[1],
            )
            cells[target] = cell.text()
        return cells

    # -- halt, resume, abort --------------------------------------------------------------------
    def _refused(self, what: str) -> bool:
        if self.deck.read_only:
            reason = guard.read_only_refusal(self.deck.profile.name).text
            self.app.notify(f"{what}: {reason}", severity="warning", timeout=5)
            return True
        return False

    def action_halt(self) -> None:
        self.app.notify(self.batch_run.halt(), timeout=4)

    def action_resume(self) -> None:
        if self._refused("resume") or self.state is None:
            return
        if self.batch_run.running:
            self.app.notify(f"batch {self.batch_run.id} is running; nothing to resume", timeout=4)
            return
        self._check_and_run("resume")

    def action_abort(self) -> None:
        if self._refused("abort") or self.state is None:
            return
        if self.state.state is BatchState.ABORTED:
            self.app.notify(f"batch {self.batch_run.id} is already aborted", timeout=4)
            return
        changed = len(
            self.state.in_steps(Step.SENT, Step.APPLIED, Step.HEALTHY, Step.FAILED, Step.UNDOING)
        )
        self.app.push_screen(ConfirmAbort(self.batch_run.id, changed), self._abort_answered)

    def _abort_answered(self, answer: bool | None) -> None:
        if not answer or self.state is None:
            return
        if self.batch_run.running:  # this deck runs it: its executor rolls back
            self.app.notify(self.batch_run.abort(self.app), timeout=5)
            return
        self._check_and_run("abort")

    @work(thread=True, group="batch-check", exit_on_error=False)
    def _check_and_run(self, verb: lifecycle.Verb) -> None:
        """The lifecycle's checks before a resume or an abort sends anything, as the CLI's
        (RBAC asks the API server, so in a worker)."""
        journal = self.batch_run.journal
        try:
            state = journal.replay()
            lifecycle.check(
                verb,
                journal,
                state,
                self.deck.guard,
                self.deck.namespaces,
                self.deck.session.cluster,
            )
        except (lifecycle.BatchRefused, guard.Refusal, JournalError, OSError) as exc:
            self.app.call_from_thread(self.app.notify, str(exc), severity="error", timeout=8)
            return
        self.app.call_from_thread(self._go, verb == "abort")

    def _go(self, abort: bool) -> None:
        if abort:
            self.app.notify(self.batch_run.abort(self.app), timeout=5)
        else:
            self.batch_run.start(self.app)
            if self.batch_run.error:
                self.app.notify(self.batch_run.error, severity="error", timeout=8)
            else:
                self.app.notify(f"resuming batch {self.batch_run.id}", timeout=3)


JournalRow = tuple[Journal, list[str]]  # a journal and its cells in the list


def read_batches(runs: BatchRuns) -> list[JournalRow]:
    """Every readable journal, newest first, as the list shows it (blocking: from a worker)."""
    rows: list[JournalRow] = []
    for journal in reversed(list_journals()):
        try:
            state = journal.replay()
        except (JournalError, OSError, ValueError, KeyError):
            continue
        here = runs.runs.get(journal.id)
        running = here is not None and here.running
        word = state.state.value
        if state.state is BatchState.RUNNING and not running:
            word += " (elsewhere)" if journal.holder() else " (no process)"
        rows.append(
            (
                journal,
                [
                    journal.id,
                    word,
                    state.plan.spec.describe(),
                    str(len(state.plan.targets)),
                    f"{len(state.waves_passed)}/{len(state.plan.waves)}",
                    str(len(state.failed)),
                    str(state.meta.get("user", "?")),
                ],
            )
        )
    return rows


def deck_of_batch(
    deck: DeckContext, clusters: ClusterDecks | None, journal: Journal
) -> DeckContext:
    """The deck a batch is resumed, aborted and gated on: its own cluster's in a deck over
    several (LookupError when that cluster is not open here), else ``deck``."""
    cluster = journal.replay().plan.cluster
    if clusters is None or not clusters.several or cluster is None:
        return deck
    return clusters.of(cluster)


class BatchListScreen(Screen[None]):
    """``:batches``: every journal with its state; enter opens one."""

    TITLE = "Batches"
    BINDINGS: ClassVar[list[BindingType]] = [  # enter is the table's: it opens the row
        Binding("ctrl+r", "reload", "Reload", id="batch.reload"),
    ]
    DEFAULT_CSS: ClassVar[str] = """
    BatchListScreen #batches-title { height: 1; text-style: bold; }
    BatchListScreen #batches-table { height: 1fr; }
    """

    def __init__(self, deck: DeckContext, clusters: ClusterDecks | None = None) -> None:
        super().__init__()
        self.deck = deck
        self.clusters = clusters  # a deck over several: a batch opens on its own cluster
        self.journals: dict[str, Journal] = {}
        self.loader = LiveLoader(
            self, lambda: read_batches(runs_of(self.app)), name="batches", what="the journals"
        )

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
        yield Static("Batches: reading the journals…", id="batches-title")
        yield self.loader.error_line()
        yield DataTable(id="batches-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table: DataTable[str | Text] = self.query_one("#batches-table", DataTable)
        table.add_columns("ID", "STATE", "ACTION", "TARGETS", "WAVES", "FAILED", "USER")
        self.loader.start()

    def action_reload(self) -> None:
        self.loader.request()

    def on_loaded(self, message: Loaded[list[JournalRow]]) -> None:
        rows = message.value
        table: DataTable[str | Text] = self.query_one("#batches-table", DataTable)
        table.clear()
        self.journals = {}
        for journal, cells in rows:
            self.journals[journal.id] = journal
            table.add_row(*(Text(printable(cell)) for cell in cells), key=journal.id)
        count = len(rows)
        self.query_one("#batches-title", Static).update(
            f"Batches: {count} (newest first) · enter opens one" if count else
            "Batches: none yet (a rollout on several deployments with waves makes one)"
        )  # fmt: skip

    def shown(self) -> list[list[str]]:
        """The rows as the user sees them (none before the screen is composed)."""
        found = self.query("#batches-table").results(DataTable)
        table = next(iter(found), None)
        if table is None:
            return []
        return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        table: DataTable[str | Text] = self.query_one("#batches-table", DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        journal = self.journals.get(str(key))
        if journal is None:
            return
        try:
            deck = deck_of_batch(self.deck, self.clusters, journal)
        except (LookupError, JournalError, OSError) as exc:
            self.app.notify(str(exc), severity="error", timeout=8)
            return
        run = runs_of(self.app).get(deck, journal)
        self.app.push_screen(BatchScreen(deck, run))
