"""The deck: ``fleetdeck`` with no subcommand. Screens, the ``:`` command line, the command
palette, ``?`` help and ``esc`` back; the screens do the work (see ``console/tui/screens``).

Keyboard first and bastion-safe: everything works without a mouse at 80×24, colour is never the
only signal (NO_COLOR), copying goes through OSC 52, and nothing on the UI thread waits on the
cluster (reads run in workers, the backend's cache keeps serving while it reconnects).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen

from console.backends.base import LogRequest
from console.batch.journal import JournalError
from console.batch.lifecycle import BatchRefused, BatchRuns, open_journal
from console.core.session import Session, SessionRequest
from console.kubeconfig import kubeconfig_contexts
from console.profile import Profile
from console.tui import preferences
from console.tui.action_keys import ACTION_KEYS
from console.tui.breach_watch import BreachWatch
from console.tui.changes_keeper import ChangesKeeper
from console.tui.context import (
    ActionScreen,
    ClusterDecks,
    DeckContext,
    PaletteCommand,
    PaletteScreen,
)
from console.tui.loader import describe
from console.tui.messages import (
    AbortBatch,
    OpenActionDialog,
    OpenBatch,
    OpenChanges,
    OpenDeployment,
    OpenDeploymentLogs,
    OpenLogs,
    OpenOverview,
)
from console.tui.screens.action_dialog import ActionDialog
from console.tui.screens.batch import BatchListScreen, BatchScreen, deck_of_batch
from console.tui.screens.changes import ChangesScreen
from console.tui.screens.deployment import DeploymentScreen
from console.tui.screens.fleet import FleetScreen
from console.tui.screens.help import HelpScreen, KeyHelp
from console.tui.screens.logs import LogsScreen, end_all_streams
from console.tui.screens.models import ModelsScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.pick import PickScreen
from console.tui.screens.prompt import COMMAND_HELP, CommandPrompt
from console.tui.screens.training import TrainingScreen
from console.tui.session_switch import (
    ALL_NAMESPACES,
    PROFILE_NAMESPACES,
    SessionSwitch,
    close_quietly,
)
from console.views.fleet_data import MetricsSource, utc_now
from console.views.format import printable

LOG_TAIL = 500

# `:` words and the screen each opens.
FLEET_WORDS = frozenset({"deploy", "deploys", "deployment", "deployments", "dp", "fleet", "home"})
JOB_WORDS = frozenset({"jobs", "job", "training", "train"})
MODEL_WORDS = frozenset({"models", "model", "mo"})
LOG_WORDS = frozenset({"logs", "log"})
BATCH_WORDS = frozenset({"batches", "batch"})
OVERVIEW_WORDS = frozenset({"overview", "top"})
CHANGES_WORDS = frozenset({"changes", "change", "ch", "history"})
QUIT_WORDS = frozenset({"q", "q!", "quit", "exit"})
CONTEXT_WORDS = frozenset({"ctx", "context", "contexts"})
NAMESPACE_WORDS = frozenset({"ns", "namespace", "namespaces"})


def deck_binding_ids() -> set[str]:
    """Every binding id of the deck's screens and widgets: what keymap.toml may remap."""
    ids: set[str] = set()
    pending: list[type[DOMNode]] = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("console.tui"):
            for binding in cls.BINDINGS:
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    return ids


class DeckCommands(Provider):
    """The command palette: every action of the current screen and the deck's own."""

    def _commands(self) -> list[PaletteCommand]:
        screen = self.screen
        own = screen.palette_commands() if isinstance(screen, PaletteScreen) else []
        app = self.app
        return [*own, *(app.global_commands() if isinstance(app, DeckApp) else [])]

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)


class ScreenRouter(App[None]):
    """Opens what a screen asks for that needs no deck session; a host of a single screen (the
    tests', a demo's) is one too."""

    def on_open_logs(self, message: OpenLogs) -> None:
        self.push_screen(
            LogsScreen(message.source, message.request, message.title, deck=message.deck)
        )


class DeckApp(ScreenRouter):
    CSS_PATH = "deck.tcss"
    TITLE = "fleetdeck"
    COMMANDS = App.COMMANDS | {DeckCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="deck.help"),
        Binding("colon", "command_line", "Command", id="deck.command_line"),
        Binding("escape", "go_back", "Back", show=False, id="deck.go_back"),
        Binding("q", "quit", "Quit", id="deck.quit"),
    ]

    def __init__(
        self,
        backend: Any,  # a Backend; the snapshot tests' fixed fleets are the part they show
        profile: Profile,
        *,
        read_only: bool = False,
        context: str | None = None,
        user: str = "",
        metrics: MetricsSource | None = None,
        clock: Callable[[], datetime] = utc_now,
        audit_path: Path | None = None,
        live: bool = True,
        switch: SessionSwitch | None = None,
        session: Session | None = None,
        remember: bool = False,
        clusters: ClusterDecks | None = None,
    ) -> None:
        super().__init__()
        # The user's keymap and last theme (console/tui/preferences.py): the real deck's;
        # a test's deck or a snapshot's looks the same on every machine.
        self.remember = remember
        # `:ctx` and `:ns` open another session through ``switch``; the deck then owns the new
        # session and its collector (``session``, ``collector``) and closes the old ones.
        self.switch = switch
        self.session = session
        self.collector: MetricsSource | None = None
        self._switching = False
        # A deck over several clusters is given them (``clusters``: one DeckContext each, and
        # ``backend`` is the first one's); a one-cluster deck makes its one here.
        self.deck = (
            clusters.home
            if clusters is not None
            else DeckContext(
                backend,
                profile,
                read_only=read_only,
                context=context,
                user=user,
                metrics=metrics,
                clock=clock,
                audit_path=audit_path,
                live=live,
            )
        )
        self.clusters = clusters or ClusterDecks.single(self.deck)
        self.fleet = FleetScreen(self.deck, self.clusters)
        notify = self.deck.profile.deck.notify
        self.breaches = BreachWatch(self, self.clusters, notify=notify)
        self.batch_runs = BatchRuns()  # batches outlive their screens (esc leaves them running)
        self.changes = ChangesKeeper(self, lambda: self.clusters)

    def on_mount(self) -> None:
        if self.remember:
            self._apply_preferences()
        self.push_screen(self.fleet)
        if self.deck.live:
            self.breaches.start()
        self.changes.warm_later(self.clusters)

    @property
    def breach_text(self) -> str:
        """The SLO banner every screen's top line shows ("" while nothing breaches)."""
        return self.breaches.text

    def _apply_preferences(self) -> None:
        theme = preferences.load_theme()
        if theme in self.available_themes:  # one kept by another Textual version may be gone
            self.theme = theme
        keymap = preferences.load_keymap(deck_binding_ids())
        if keymap.keys:
            self.set_keymap(keymap.keys)
        for problem in keymap.problems:
            self._say(problem)
        self.watch(self, "theme", self._keep_theme, init=False)

    def _keep_theme(self, theme: str) -> None:
        keep = partial(self._save_theme, theme)
        self.run_worker(keep, group="keep-theme", thread=True, exit_on_error=False)

    def _save_theme(self, theme: str) -> None:
        problem = preferences.save_theme(theme)
        if problem:
            self.call_later(self._say, problem)

    def on_unmount(self) -> None:
        self.breaches.stop()
        self.changes.stop()
        self.batch_runs.halt_all()  # resumable from the journal, never cut mid-step
        end_all_streams()  # a Logs screen open at quit: its reader must not hold the exit

    # -- navigation ---------------------------------------------------------------------------
    def action_go_back(self) -> None:
        # The Fleet screen is home: esc never leaves it for the empty default screen.
        if len(self.screen_stack) > 2:
            self.pop_screen()

    def go_home(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        keys, unavailable = self._screen_keys(self.screen)
        title = f"Keys: {type(self.screen).__name__.removesuffix('Screen') or 'deck'}"
        self.push_screen(HelpScreen(title, keys, unavailable))

    def _screen_keys(self, screen: Screen[Any]) -> tuple[list[KeyHelp], list[KeyHelp]]:
        keys: list[KeyHelp] = []
        seen: set[tuple[str, str]] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            # The screen's and the deck's own keys; widgets' built-ins (DataTable's ctrl+home...)
            # are summed up in one line below.
            if active.node is not screen and active.node is not self:
                continue
            text = binding.description or binding.action.replace("_", " ")
            if (key, text) not in seen:
                seen.add((key, text))
                keys.append((self.get_key_display(binding), text))
        unavailable: list[KeyHelp] = []
        if isinstance(screen, ActionScreen):
            for key, action in ACTION_KEYS.items():
                reason = screen.why_not(action)
                if reason:
                    unavailable.append((key, f"{action}: {reason}"))
        keys.append(("j/k ↑/↓", "move; g/G first/last; pgup/pgdn a page; ←/→ scroll"))
        keys.append((":", COMMAND_HELP))
        keys.append(("ctrl+p", "command palette: every action of this screen"))
        return keys, unavailable

    def action_command_line(self) -> None:
        self.push_screen(CommandPrompt(), self._command_entered)

    def _command_entered(self, text: str | None) -> None:
        if text:
            self.run_command(text)

    def run_command(self, text: str) -> None:
        """``deploy``, ``jobs``, ``models``, ``logs NAME``, ``help``, ``quit`` (k9s's words)."""
        word, _, rest = text.strip().lstrip(":").partition(" ")
        word, rest = word.lower(), rest.strip()
        if word in FLEET_WORDS:
            self.go_home()
            if rest:
                self.fleet.set_filter(rest)
        elif word in JOB_WORDS:
            self.open_training(rest)
        elif word in MODEL_WORDS:
            self.open_models(rest)
        elif word in LOG_WORDS:
            self._logs_by_name(rest)
        elif word in BATCH_WORDS:
            self.open_batches(rest)
        elif word in OVERVIEW_WORDS:
            self.open_overview(rest)
        elif word in CHANGES_WORDS:
            self.open_changes(rest)
        elif word in {"help", "h", "?"}:
            self.action_help()
        elif word in CONTEXT_WORDS:
            self.switch_context(rest)
        elif word in NAMESPACE_WORDS:
            self.switch_namespaces(rest)
        elif word in QUIT_WORDS:
            self.exit()
        else:
            self.notify(f"unknown command {word!r}; try {COMMAND_HELP}", severity="warning")

    # -- :ctx and :ns (console/tui/session_switch.py) -------------------------------------------
    def switch_context(self, context: str) -> None:
        """``:ctx NAME`` moves the deck to that kube context; ``:ctx`` lists them to pick one."""
        switch = self._switch_or_say("contexts")
        if switch is None:
            return
        if context:
            self._reopen(switch.on_context(context), f"context {context}")
            return
        self.run_worker(self._list_contexts, group="contexts", thread=True, exit_on_error=False)

    def _list_contexts(self) -> None:
        switch = self.switch
        assert switch is not None  # switch_context checked it
        try:
            contexts = kubeconfig_contexts(switch.profile)
        except Exception as exc:  # an unreadable kubeconfig is said; the deck stays
            self.call_later(self._say, f"cannot read the kubeconfig's contexts: {describe(exc)}")
            return
        self.call_later(self._pick_context, contexts)

    def _pick_context(self, contexts: list[str]) -> None:
        if not contexts:
            self._say("the kubeconfig has no contexts")
            return
        picker = PickScreen("Switch to the context:", contexts, self.deck.context)
        self.push_screen(picker, lambda chosen: self.switch_context(chosen) if chosen else None)

    def switch_namespaces(self, word: str) -> None:
        """``:ns NAME`` shows that namespace, ``:ns all`` every one, ``:ns profile`` the
        profile's; ``:ns`` lists them to pick one."""
        switch = self._switch_or_say("namespaces")
        if switch is None:
            return
        if word:
            self._reopen(switch.on_namespaces(word), f"namespaces {word}")
            return
        settings = switch.profile.kubernetes
        known = sorted({*(settings.namespaces if settings else ()), *self.deck.namespaces})
        choices = [*known, ALL_NAMESPACES, PROFILE_NAMESPACES]
        current = ",".join(self.deck.namespaces) if self.deck.namespaces else ALL_NAMESPACES
        picker = PickScreen("Show the namespaces:", choices, current)
        self.push_screen(picker, lambda chosen: self.switch_namespaces(chosen) if chosen else None)

    def _switch_or_say(self, what: str) -> SessionSwitch | None:
        if self.clusters.several:
            names = ", ".join(self.clusters.names())
            self._say(
                f"this deck shows the clusters {names}, each with its own context and "
                f"namespaces: to switch {what}, start the deck with --cluster NAME"
            )
        elif self.switch is None:
            self._say(f"this deck was given its backend: it cannot switch {what}")
        elif self.switch.profile.backend != "kubernetes":
            self._say(f"the local runtime has no {what} to switch (a Kubernetes profile has)")
        else:
            return self.switch
        return None

    def _reopen(self, request: SessionRequest, what: str) -> None:
        if self._switching:
            self._say("already switching; wait for it")
            return
        self._switching = True
        self.notify(printable(f"opening {what}…"), markup=False)
        opened = partial(self._open_session, request, what)
        self.run_worker(opened, group="session-switch", thread=True, exit_on_error=False)

    def _open_session(self, request: SessionRequest, what: str) -> None:
        switch = self.switch
        assert switch is not None  # _reopen is called only with one
        try:
            session, collector = switch.open(request)
        except Exception as exc:  # said; the deck stays on the session it has
            self.call_later(self._switch_failed, f"cannot open {what}: {describe(exc)}")
            return
        self.call_later(self._switched, request, session, collector)

    def _switch_failed(self, text: str) -> None:
        self._switching = False
        self._say(text)

    def _switched(
        self, request: SessionRequest, session: Session, collector: MetricsSource | None
    ) -> None:
        """Rebuild the deck on the new session (on the event loop), then close the old one."""
        assert self.switch is not None
        self._switching = False
        halted = sum(1 for run in self.batch_runs.runs.values() if run.running)
        self.batch_runs.halt_all()  # their journals resume them on the context they started on
        old_session, old_collector = self.session, self.collector
        old = self.deck
        self.switch.request = request
        self.session, self.collector = session, collector
        self.deck = DeckContext(
            session.backend,
            self.switch.profile,
            read_only=session.read_only,
            context=session.context,
            user=session.user,
            metrics=collector,
            clock=old.clock,
            audit_path=old.audit_path,
            live=old.live,
        )
        self.clusters = ClusterDecks.single(self.deck)
        self.breaches.stop()
        self.breaches = BreachWatch(self, self.clusters, notify=self.deck.profile.deck.notify)
        if self.deck.live:
            self.breaches.start()
        self.changes.stop()  # the old session's backends close: no more marks from them
        self.changes.warm_later(self.clusters)
        self.go_home()
        self.fleet = FleetScreen(self.deck, self.clusters)
        self.switch_screen(self.fleet)
        where = session.context or "the local runtime"
        spaces = ",".join(self.deck.namespaces) or "all namespaces"
        note = f"; {halted} batches halted (resume them from :batches)" if halted else ""
        self.notify(printable(f"now on {where} [{spaces}] as {session.user}{note}"), markup=False)
        close = partial(close_quietly, old_session, old_collector)
        self.run_worker(close, group="session-close", thread=True, exit_on_error=False)

    def _open(self, make: Callable[[], Screen[Any]], title: str) -> None:
        try:
            screen = make()
        except Exception as exc:  # a screen that cannot start says why, the deck goes on
            self.notify(f"cannot open {title}: {exc}", severity="error")
            return
        self.go_home()
        self.push_screen(screen)

    # -- which cluster a screen opens on ------------------------------------------------------
    def deck_here(self, cluster: str = "") -> DeckContext | None:
        """The cluster a screen opened without a row works on: the one named (``:jobs b``),
        else the Fleet cursor row's, else the first. None (said) for a cluster not in the deck."""
        if not self.clusters.several:
            return self.deck
        if not cluster:
            row = self.fleet.table.cursor_row if self.fleet.is_mounted else None
            cluster = row.deployment.cluster if row else ""
        if not cluster:
            return self.clusters.home
        try:
            return self.clusters.of(cluster)
        except LookupError as exc:
            self._say(str(exc))
            return None

    def _deck_of_row(self, cluster: str) -> DeckContext | None:
        """The deck of the cluster a row came from (said, and None, if it is not open)."""
        try:
            return self.clusters.of(cluster)
        except LookupError as exc:
            self._say(str(exc))
            return None

    def open_training(self, cluster: str = "") -> None:
        """Every cluster's jobs; ``:jobs NAME`` one cluster's."""
        if self.clusters.several and not cluster:
            home = self.clusters.home
            make = partial(
                TrainingScreen, home.backend, home.profile, deck=home, clusters=self.clusters
            )
            self._open(make, "Training")
            return
        deck = self.deck_here(cluster)
        if deck is not None:
            make = partial(TrainingScreen, deck.backend, deck.profile, deck=deck)
            self._open(make, "Training")

    def open_models(self, cluster: str = "") -> None:
        deck = self.deck_here(cluster)
        if deck is not None:
            self._open(partial(ModelsScreen, deck.backend, deck.profile, deck=deck), "Models")

    def open_overview(self, cluster: str = "") -> None:
        """Every cluster's numbers and the fleet-wide ones; ``:overview NAME`` one cluster's."""
        if self.clusters.several and not cluster:
            self._open(partial(OverviewScreen, self.clusters.home, self.clusters), "Overview")
            return
        deck = self.deck_here(cluster)
        if deck is not None:
            self._open(partial(OverviewScreen, deck), "Overview")

    def open_changes(self, text: str = "") -> None:
        """Every cluster's changes, newest first; ``:changes TEXT`` opens them filtered."""
        made: list[ChangesScreen] = []

        def make() -> ChangesScreen:
            kept = self.changes.timeline(self.clusters)
            made.append(ChangesScreen(self.clusters.home, self.clusters, kept))
            return made[0]

        self._open(make, "Changes")
        if text and made:
            made[0].call_after_refresh(made[0].set_filter, text)

    def open_batches(self, cluster: str = "") -> None:
        """Every journal; each batch opens on its own cluster."""
        deck = self.deck_here(cluster)
        if deck is not None:
            self._open(partial(BatchListScreen, deck, self.clusters), "Batches")

    def _logs_by_name(self, text: str) -> None:
        if not text:
            self.notify(
                "logs NAME: which deployment (NAME, NAMESPACE/NAME or CLUSTER/NAMESPACE/NAME)?",
                severity="warning",
            )
            return
        wanted = text.split("/")
        matches = [
            r.deployment
            for r in self.fleet.rows
            if [part for part in r.key if part][-len(wanted) :] == wanted
        ]
        if not matches:
            self.notify(f"no deployment named {text!r} in the fleet", severity="warning")
            return
        if len({d.cluster for d in matches}) > 1:
            where = ", ".join(f"{d.cluster}/{d.namespace}/{d.name}" for d in matches)
            self._say(f"{text!r} is in several clusters ({where}): name one")
            return
        self.open_logs(matches[0].namespace, matches[0].name, matches[0].cluster)

    def open_logs(self, namespace: str, name: str, cluster: str = "") -> None:
        """The Logs screen on a deployment's pods, merged with a prefix per pod (the pods are
        looked up off the event loop: the local backend asks its agent)."""
        deck = self._deck_of_row(cluster)
        if deck is None:
            return
        find = partial(self._find_pods, deck, namespace, name)
        self.run_worker(find, group="logs-pods", thread=True, exit_on_error=False)

    def _find_pods(self, deck: DeckContext, namespace: str, name: str) -> None:
        where = printable("/".join(p for p in (deck.cluster, namespace, name) if p))
        try:
            pods = [p.name for p in deck.backend.pods(namespace, name)]
        except Exception as exc:  # said plainly; the deck stays where it is
            self.call_later(self._say, f"cannot list the pods of {where}: {describe(exc)}")
            return
        if not pods:
            self.call_later(self._say, f"{where} has no pods yet")
            return
        request = LogRequest(pods, namespace, follow=True, tail=LOG_TAIL)
        # Screens are made on the event loop.
        self.call_later(self._show_logs, deck, request, where)

    def _show_logs(self, deck: DeckContext, request: LogRequest, title: str) -> None:
        self.push_screen(LogsScreen(deck.backend, request, title, deck=deck))

    def _say(self, text: str) -> None:
        self.notify(printable(text), severity="warning", markup=False)

    # -- what the screens ask for (console/tui/messages.py) -----------------------------------
    def on_open_deployment(self, message: OpenDeployment) -> None:
        deck = self._deck_of_row(message.cluster)
        if deck is not None:
            self.push_screen(DeploymentScreen(deck, *message.key))

    def on_open_deployment_logs(self, message: OpenDeploymentLogs) -> None:
        self.open_logs(*message.key, message.cluster)

    def on_open_overview(self, message: OpenOverview) -> None:
        self.open_overview(message.cluster)

    def on_open_action_dialog(self, message: OpenActionDialog) -> None:
        clusters = {target.cluster for target in message.targets}
        if len(clusters) > 1:  # the Fleet screen refuses first; nothing acts on two at once
            self._say(f"the targets are in clusters {', '.join(sorted(clusters))}: mark one's")
            return
        deck = self._deck_of_row(clusters.pop() if clusters else "")
        if deck is not None:
            self.push_screen(ActionDialog(deck, message.action, message.targets))

    def on_open_changes(self, message: OpenChanges) -> None:
        self.open_changes()

    def on_abort_batch(self, message: AbortBatch) -> None:
        """The Batch screen of a batch, its abort asked (which confirms, then rolls back)."""
        try:
            journal = open_journal(message.batch_id)
            deck = deck_of_batch(self.deck, self.clusters, journal)
        except (BatchRefused, LookupError, JournalError, OSError, ValueError) as exc:
            self._say(f"batch {message.batch_id}: {exc}")
            return
        screen = BatchScreen(deck, self.batch_runs.get(deck, journal))
        self.push_screen(screen)
        screen.call_after_refresh(screen.action_abort)

    def on_open_batch(self, message: OpenBatch) -> None:
        host = message.run.host  # the cluster's deck the dialog started it on
        self.push_screen(
            BatchScreen(host if isinstance(host, DeckContext) else self.deck, message.run)
        )

    # -- the palette's deck-wide entries ------------------------------------------------------
    def global_commands(self) -> list[PaletteCommand]:
        return [
            ("Go to the fleet", ":deploy", self.go_home),
            ("Go to training jobs", ":jobs", self.open_training),
            ("Go to models", ":models", self.open_models),
            ("Batches: rollouts in waves, halt, resume, abort", ":batches", self.open_batches),
            ("Fleet overview: numbers, plots, top deployments", ":overview", self.open_overview),
            ("Changes: what changed, its effect, undo", ":changes", self.open_changes),
            ("Command line", ":", self.action_command_line),
            ("Switch context", ":ctx", partial(self.switch_context, "")),
            ("Switch namespaces", ":ns", partial(self.switch_namespaces, "")),
            ("Help: keys of this screen", "?", self.action_help),
            ("Quit", "q", self.exit),
        ]
