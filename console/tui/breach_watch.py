"""The deck's breach banner and alerts: while any watched deployment breaches its SLO, every
screen's top line says so (the count, the worst one and the most recent change made to it);
when a breach starts or a batch halts the terminal rings its bell and gets a desktop
notification (OSC 9 and OSC 777; inside tmux wrapped to pass through), unless the profile's
``[deck] notify = false``.

Breaches are computed where the numbers arrive (each cluster's collector thread, after each
refresh: ``console.metrics.breaches``, the arithmetic ``fleetdeck watch`` uses) and handed to
the event loop; halted batches are read from the journals in a thread worker every few seconds.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from textual.app import App
from textual.timer import Timer

from console.batch.journal import halted_batches
from console.changes.model import Change
from console.changes.sources import AuditFollower, Reader
from console.changes.timeline import latest_on, timeline
from console.core.session import cluster_name
from console.metrics.breaches import Breach, BreachTracker, Where, breaches_in, latest_only
from console.tui.context import ClusterDecks, DeckContext
from console.tui.widgets.metrics_plot import ReportsError
from console.views.format import age, printable

HALT_CHECK_SECONDS = 5.0
LAST_CHANGE_SECONDS = 15.0  # the worst one's last change looked up again this often
ESC = "\x1b"


def notification(title: str, body: str) -> str:
    """OSC 9 (iTerm2, Windows Terminal, kitty...) and OSC 777 (urxvt, foot, VTE): the text
    printable and without the separators the sequences use; wrapped for tmux's passthrough
    when inside tmux (its ``allow-passthrough`` option lets them out)."""

    def clean(text: str) -> str:
        return printable(text).replace(";", ",").replace("\\", "/")[:200]

    osc9 = f"\x1b]9;{clean(f'{title}: {body}')}\x07"
    osc777 = f"\x1b]777;notify;{clean(title)};{clean(body)}\x07"
    if os.environ.get("TMUX"):  # tmux's passthrough: each one in DCS tmux; ... ST, ESC doubled
        return "".join(f"\x1bPtmux;{s.replace(ESC, ESC * 2)}\x1b\\" for s in (osc9, osc777))
    return osc9 + osc777


class BreachWatch:
    """Breaches across the deck's clusters and the alerts they raise; ``text`` is the banner
    ("" while nothing breaches)."""

    def __init__(self, app: App[None], clusters: ClusterDecks, *, notify: bool) -> None:
        self.app = app
        self.clusters = clusters
        self.notify = notify
        self.tracker = BreachTracker()
        self.text = ""
        self.alerts = 0  # bells rung: tests and the bench read it
        self._found: dict[str, list[Breach]] = {}
        self._lock = threading.Lock()
        self._halted: set[str] | None = None  # None: not read yet (those halted before: no alert)
        self._unsubscribes: list[Callable[[], None]] = []
        self._timer: Timer | None = None
        self._stopped = False
        self._worst_where: Where | None = None
        self._last_change: Change | None = None  # the worst one's most recent change
        self._looked_at = 0.0  # when it was last looked up (time.monotonic())
        self._readers: dict[str, Reader] = {}

    def start(self) -> None:
        for cluster, deck in self.clusters.decks.items():
            if deck.metrics is not None:
                on_refresh = self._measured_in(cluster, deck)
                self._unsubscribes.append(deck.metrics.subscribe(on_refresh))
        self._timer = self.app.set_interval(HALT_CHECK_SECONDS, self._check_halts)
        self._check_halts()

    def stop(self) -> None:
        self._stopped = True
        for unsubscribe in self._unsubscribes:
            unsubscribe()
        self._unsubscribes = []
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    # -- breaches (the collector's thread, then the event loop) ----------------------------------
    def _measured_in(self, cluster: str, deck: DeckContext) -> Callable[[], None]:
        def measured() -> None:
            metrics = deck.metrics
            if metrics is None or self._stopped:
                return
            if isinstance(metrics, ReportsError) and metrics.error:
                return  # the source failed: its last numbers are not current (kept as shown)
            try:
                models = {d.key: d.model for d in deck.backend.deployments()}
                current = latest_only(metrics.snapshot())
                snapshot = {k: m for k, m in current.items() if k in models}
                found = breaches_in(snapshot, models, deck.profile.slo, cluster)
            except Exception:  # the cache or the numbers are not readable now: next refresh
                return
            with self._lock:
                self._found[cluster] = found
            self.app.call_later(self._update)  # thread-safe

        return measured

    def _update(self) -> None:
        if self._stopped:  # a refresh in flight when the deck moved to another context
            return
        with self._lock:
            found = [b for each in self._found.values() for b in each]
        started, _ = self.tracker.update(found, time.time())
        worst = self.tracker.worst()
        where = worst.where if worst is not None else None
        stale = time.monotonic() - self._looked_at > LAST_CHANGE_SECONDS
        if where != self._worst_where or (where is not None and stale):
            if where != self._worst_where:
                self._last_change = None
            self._worst_where = where
            if where is not None:
                self._looked_at = time.monotonic()
                self._find_last_change(where)
        self._show()
        if started:
            worst = max(started, key=lambda b: b.severity)
            self.alert("fleetdeck: SLO breach", worst.describe())

    def _show(self) -> None:
        summary = self.tracker.summary()
        change = self._last_change
        if summary and change is not None:
            ago = age(change.time, datetime.now(UTC))
            who = change.who or "?"
            summary += f"; last change {change.id}: {change.what} by {who}, {ago} ago"
        self.text = summary

    # -- the worst one's most recent change (a worker, then the event loop) ---------------------
    def _find_last_change(self, where: Where) -> None:
        find = partial(self._read_last_change, where)
        self.app.run_worker(find, group="breach-change", thread=True, exit_on_error=False)

    def _read_last_change(self, where: Where) -> None:
        cluster, namespace, name = where
        try:
            deck = self.clusters.of(cluster)
            reader = self._readers.get(cluster)
            if reader is None:
                reader = self._readers[cluster] = Reader(
                    deck.profile.name,
                    only_cluster="" if self.clusters.several else cluster_name(deck.profile),
                    store=None,
                    audit=AuditFollower(deck.audit_path),
                    contexts={cluster: deck.audit.context},
                )
            changes = timeline(reader.read_one(cluster, deck.backend, (namespace, name)))
            change = latest_on(changes, cluster, (namespace, name))
        except Exception:  # the history or the audit log not readable now: the banner stays short
            return
        if change is not None:
            self.app.call_later(self._last_change_found, where, change)

    def _last_change_found(self, where: Where, change: Change) -> None:
        if self._stopped or where != self._worst_where:
            return  # another deployment is the worst by now
        self._last_change = change
        self._show()

    # -- halted batches (a worker, then the event loop) ----------------------------------------
    def _check_halts(self) -> None:
        self.app.run_worker(
            self._read_halts, group="breach-halts", thread=True, exit_on_error=False
        )

    def _read_halts(self) -> None:
        try:
            halted = halted_batches()
        except OSError:  # the state folder is not readable now: next time
            return
        self.app.call_later(self._halts_seen, halted)

    def _halts_seen(self, halted: dict[str, str]) -> None:
        if self._stopped:
            return
        new = [] if self._halted is None else [b for b in halted if b not in self._halted]
        self._halted = set(halted)
        for batch_id in new:
            self.alert("fleetdeck: batch halted", f"{batch_id}: {halted[batch_id]}")

    # -- the alert -------------------------------------------------------------------------------
    def alert(self, title: str, body: str) -> None:
        """The bell and a desktop notification, and a toast in the deck either way."""
        self.app.notify(printable(body), title=title, severity="error", markup=False)
        if not self.notify:
            return
        self.alerts += 1
        self.app.bell()
        driver = self.app._driver  # Textual writes its bell the same way; no public raw write
        if driver is not None and not self.app.is_headless:
            driver.write(notification(title, body))
