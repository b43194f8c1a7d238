"""The Deployment screen: one deployment's revisions, pods, events, conditions and metrics, live.

Reads go through the screen's live loader on every change the backend reports (one at a time,
bursts merged; a failed read is shown and retried) and come back as one ``Loaded`` message; the
tables are refilled keeping their cursor. The action keys are the Fleet screen's, acting on this
deployment.

The Metrics tab plots the collector's history of this deployment (redrawn after the
collector's refreshes only while the tab is shown) and, on Kubernetes, its autoscaler, read
in a worker when the tab is shown and every ``AUTOSCALER_REFRESH_SECONDS`` while it is.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from console.backends.base import Autoscaling, ConditionInfo
from console.batch.runner import Action
from console.model import EventInfo, ModelDeployment, PodInfo, RevisionInfo
from console.tui.action_keys import (
    action_bindings,
    action_commands,
    chosen_action,
    offered,
    refuse_key,
)
from console.tui.context import DeckContext, PaletteCommand
from console.tui.loader import LiveLoader, Loaded
from console.tui.messages import OpenActionDialog, OpenDeploymentLogs
from console.tui.widgets.metrics_plot import (
    MetricsPanel,
    MetricsRefreshed,
    RefreshCoalescer,
    history_source,
    is_shown,
)
from console.tui.widgets.where_line import WhereLine
from console.views.autoscaler import deck_lines
from console.views.fleet_rows import status_text
from console.views.format import age, printable

AUTOSCALER_REFRESH_SECONDS = 10.0
AGE_REFRESH_SECONDS = 15.0  # ages move on without changes


Condition = ConditionInfo  # the name this screen's readers knew it by


@dataclass(frozen=True)
class DeploymentDetail:
    deployment: ModelDeployment | None  # None: it is gone (deleted)
    revisions: list[RevisionInfo]
    pods: list[PodInfo]
    events: list[EventInfo]
    conditions: list[Condition]


def read_conditions(backend: Any, namespace: str, name: str) -> list[ConditionInfo]:
    """The deployment's status conditions, as its backend reports them."""
    return list(backend.conditions(namespace, name))


def read_autoscaler_text(backend: Any, namespace: str, name: str) -> str:
    """What the Metrics tab says of the deployment's autoscaler (in a worker)."""
    if not isinstance(backend, Autoscaling):
        return "autoscaler: this backend has none"
    try:
        info = backend.autoscaler(namespace, name)
    except Exception as exc:
        return printable(f"autoscaler: cannot read it: {exc}")
    if info is None:
        return (
            f"no autoscaler (fleetdeck autoscale {name} --min R --max R --rps-per-pod N adds one)"
        )
    return "\n".join(deck_lines(info))


def shown(value: object, empty: str = "-") -> str:
    """A cell's text: ``value`` printable (it quotes the cluster), or ``empty`` when blank."""
    return printable(value) if value else empty


def read_detail(backend: Any, namespace: str, name: str) -> DeploymentDetail:
    """Everything the screen shows (blocking: from a worker); a failed read raises, and the
    loader keeps the last view, says why and retries."""
    return DeploymentDetail(
        backend.deployment(namespace, name),
        backend.history(namespace, name),
        backend.pods(namespace, name),
        backend.events(namespace, name),
        read_conditions(backend, namespace, name),
    )


class DeploymentScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l", "logs", "Logs", id="deployment.logs"),
        Binding("y", "copy", "Copy name", show=False, id="deployment.copy"),
        *action_bindings(),
        Binding("1", "tab('revisions')", "Revisions", show=False, id="deployment.tab-revisions"),
        Binding("2", "tab('pods')", "Pods", show=False, id="deployment.tab-pods"),
        Binding("3", "tab('events')", "Events", show=False, id="deployment.tab-events"),
        Binding("4", "tab('conditions')", "Conditions", show=False, id="deployment.tab-conditions"),
        Binding("5", "tab('metrics')", "Metrics", show=False, id="deployment.tab-metrics"),
    ]

    def __init__(self, deck: DeckContext, namespace: str, name: str) -> None:
        super().__init__()
        self.deck = deck
        self.namespace = namespace
        self.deployment_name = name
        self.detail: DeploymentDetail | None = None
        self.loader = LiveLoader(
            self,
            lambda: read_detail(deck.backend, namespace, name),
            name="detail",
            what=printable(f"{namespace}/{name}"),
        )
        self.metrics = history_source(deck.metrics)
        self.metric_draws = 0
        self.autoscaler_text = ""
        self._metrics_stale = False
        self._coalescer = RefreshCoalescer(self)
        self._unsubscribe_metrics: Any = None

    def compose(self) -> ComposeResult:
        yield WhereLine(self.deck)
        yield Static(Text(f"{self.where()}: loading…"), id="detail-summary", markup=False)
        yield self.loader.error_line()
        with TabbedContent(initial="revisions"):
            with TabPane("Revisions", id="revisions"):
                yield DataTable(id="detail-revisions", cursor_type="row", zebra_stripes=True)
            with TabPane("Pods", id="pods"):
                yield DataTable(id="detail-pods", cursor_type="row", zebra_stripes=True)
            with TabPane("Events", id="events"):
                yield DataTable(id="detail-events", cursor_type="row", zebra_stripes=True)
            with TabPane("Conditions", id="conditions"):
                yield DataTable(id="detail-conditions", cursor_type="row", zebra_stripes=True)
            with TabPane("Metrics", id="metrics"):
                yield Static("autoscaler: …", id="detail-autoscaler", markup=False)
                yield MetricsPanel(id="detail-metrics")
        yield Footer()

    def on_mount(self) -> None:
        columns = {
            "revisions": ("REV", "MODEL", "VERSION", "REPLICAS", "CHANGE-CAUSE", "IMAGE"),
            "pods": ("POD", "PHASE", "READY", "RESTARTS", "NODE", "REV", "AGE", "REASON"),
            "events": ("AGE", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE"),
            "conditions": ("TYPE", "STATUS", "REASON", "UPDATED", "MESSAGE"),
        }
        for table_id, titles in columns.items():
            self.query_one(f"#detail-{table_id}", DataTable).add_columns(*titles)
        self.query_one("#detail-revisions", DataTable).focus()
        if self.deck.live:
            self.loader.follow(self.deck.backend.subscribe)
            if self.metrics is not None:
                self._unsubscribe_metrics = self.metrics.subscribe(self._coalescer)
            self.set_interval(AUTOSCALER_REFRESH_SECONDS, self._autoscaler_if_shown)
        self.loader.start(every=AGE_REFRESH_SECONDS if self.deck.live else None)

    def on_unmount(self) -> None:
        self.loader.stop()
        if self._unsubscribe_metrics is not None:
            self._unsubscribe_metrics()
            self._unsubscribe_metrics = None

    # -- the Metrics tab ----------------------------------------------------------------------
    @property
    def metrics_shown(self) -> bool:
        return is_shown(self) and self.query_one(TabbedContent).active == "metrics"

    def on_metrics_refreshed(self, _: MetricsRefreshed) -> None:
        self._coalescer.taken()
        if self.metrics_shown:
            self.draw_metrics()
        else:
            self._metrics_stale = True

    def on_screen_resume(self) -> None:
        if self._metrics_stale and self.metrics_shown:
            self.draw_metrics()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "metrics":
            self.draw_metrics()
            self._read_autoscaler()

    def draw_metrics(self) -> None:
        self._metrics_stale = False
        panel = self.query_one("#detail-metrics", MetricsPanel)
        if self.metrics is None:
            panel.show([], "(no metrics collector)")
            return
        self.metric_draws += 1
        key = (self.namespace, self.deployment_name)
        latest = self.metrics.snapshot().get(key)
        extra = ""
        if latest is not None:
            extra = f"pods {latest.pods}"
            hit = latest.numbers.precomputed_hit_ratio  # None: no table, or no key lookups
            if hit is not None:
                extra = f"precomputed hits {100.0 * hit:.0f} %  {extra}"
            if latest.pods_failed:  # the first reason only: the plots keep their rows
                more = f" (+{len(latest.problems) - 1} more)" if len(latest.problems) > 1 else ""
                first = latest.problems[0] if latest.problems else "?"
                # The panel's line is markup: the reason (a pod's answer) escaped for it too.
                extra += f", {latest.pods_failed} not answering: {escape(printable(first))}{more}"
        panel.show(self.metrics.history(key), extra)

    def _autoscaler_if_shown(self) -> None:
        if self.metrics_shown:
            self._read_autoscaler()

    @work(thread=True, group="autoscaler-read", exclusive=True, exit_on_error=False)
    def _read_autoscaler(self) -> None:
        text = read_autoscaler_text(self.deck.backend, self.namespace, self.deployment_name)
        self.app.call_from_thread(self._show_autoscaler, text)

    def _show_autoscaler(self, text: str) -> None:
        self.autoscaler_text = text
        self.query_one("#detail-autoscaler", Static).update(Text(text))

    # -- loading ------------------------------------------------------------------------------
    @property
    def loads(self) -> int:
        """Reads shown so far: tests wait on it."""
        return self.loader.loads

    def on_loaded(self, message: Loaded[DeploymentDetail]) -> None:
        self.detail = message.value
        self._show(message.value)

    def where(self) -> str:
        """``namespace/name`` of this screen, printable (it came from a row or a command)."""
        return printable(f"{self.namespace}/{self.deployment_name}")

    def _show(self, detail: DeploymentDetail) -> None:
        now = self.deck.clock()
        d = detail.deployment
        summary = self.query_one("#detail-summary", Static)
        if d is None:
            summary.update(Text(f"{self.where()}: not found (deleted?)"))
        else:
            # Text, never markup: a '[' in a name or reason is shown as itself.
            summary.update(
                Text.assemble(
                    (printable(f"{d.namespace}/{d.name}"), "bold"),
                    f"  model {shown(d.model)} v{shown(d.version)}  "
                    f"ready {d.ready}/{d.desired}  updated {d.updated}  available {d.available}  "
                    f"revision {d.revision or '-'}  age {age(d.created, now)}\n"
                    f"{status_text(d)}  image {shown(d.image)}",
                )
            )
        self._fill(
            "revisions",
            [
                (
                    str(r.number),
                    shown(r.model),
                    shown(r.model_version),
                    str(r.replicas),
                    shown(r.change_cause),
                    shown(", ".join(r.images)),
                )
                for r in sorted(detail.revisions, key=lambda r: -r.number)
            ],
        )
        self._fill(
            "pods",
            [
                (
                    shown(p.name),
                    shown(p.phase),
                    "yes" if p.ready else "no",
                    str(p.restarts),
                    shown(p.node),
                    "-" if p.revision is None else str(p.revision),
                    age(p.created, now),
                    shown(p.reason, ""),
                )
                for p in detail.pods
            ],
        )
        self._fill(
            "events",
            [
                (
                    age(e.time, now),
                    shown(e.kind),
                    shown(e.reason),
                    shown(e.object),
                    str(e.count),
                    shown(e.message, ""),
                )
                for e in reversed(detail.events)  # newest first
            ],
        )
        self._fill(
            "conditions",
            [
                (
                    shown(c.type),
                    shown(c.status),
                    shown(c.reason),
                    shown(c.updated),
                    shown(c.message, ""),
                )
                for c in detail.conditions
            ],
        )

    def _fill(self, table_id: str, rows: list[tuple[str, ...]]) -> None:
        table: DataTable[Text] = self.query_one(f"#detail-{table_id}", DataTable)
        cursor = table.cursor_row
        table.clear()
        # Each cell as Text: DataTable parses a plain string as markup.
        table.add_rows([tuple(Text(cell) for cell in row) for row in rows])
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)

    # -- actions ------------------------------------------------------------------------------
    def why_not(self, action: Action) -> str:
        return self.deck.permissions.why_not(action, [self.namespace])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return offered(action, parameters, self.why_not)

    def on_key(self, event: events.Key) -> None:
        refuse_key(event, self.app, self.why_not)

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        if tab != "metrics":
            self.query_one(f"#detail-{tab}", DataTable).focus()

    def action_logs(self) -> None:
        self.post_message(
            OpenDeploymentLogs(self.namespace, self.deployment_name, self.deck.cluster)
        )

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(f"{self.namespace}/{self.deployment_name}")
        self.app.notify("copied the name", timeout=2)

    def action_act(self, action: str) -> None:
        chosen = chosen_action(self.app, action, self.why_not)
        if chosen is None:
            return
        target = self.detail.deployment if self.detail else None
        if target is None:
            self.app.notify(f"{self.where()} is not (or no longer) there", markup=False)
            return
        # In a deck over several clusters the dialog acts in this screen's cluster.
        target = dataclasses.replace(target, cluster=self.deck.cluster)
        self.post_message(OpenActionDialog(chosen, [target]))

    def palette_commands(self) -> list[PaletteCommand]:
        commands = action_commands(self.app, self.why_not, self.action_act, self.deployment_name)
        for tab in ("revisions", "pods", "events", "conditions", "metrics"):
            commands.append((f"Show {tab}", f"the {tab} tab", partial(self.action_tab, tab)))
        commands.append(("Logs", f"live tail of {self.deployment_name}'s pods", self.action_logs))
        return commands
