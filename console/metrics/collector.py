"""The collector: refreshes a source on a timer and keeps windows, snapshots and history.

One background thread refreshes every ``interval_s``; a refresh never overlaps the previous
one (a slow round delays the next instead of stacking). Readers (the TUI, ``fleetdeck top``,
the batch engine) take immutable snapshots under a lock and never wait for a scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable

from console.metrics.readings import (
    DeploymentMetrics,
    FleetMetrics,
    Key,
    LatestNumbers,
    WindowRates,
)
from console.metrics.sources import Reading, Source, SourceError, Wanted, wanted_set
from console.metrics.window import PodWindow

log = logging.getLogger(__name__)

DEFAULT_WINDOW_S = 30.0
DEFAULT_INTERVAL_S = 2.0
DEFAULT_HISTORY = 300  # points per deployment: 10 minutes at 2 s


class MetricsCollector:
    def __init__(
        self,
        source: Source,
        window_s: float = DEFAULT_WINDOW_S,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        history_points: int = DEFAULT_HISTORY,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if window_s <= 0 or interval_s <= 0:
            raise ValueError("window_s and interval_s must be positive")
        self.source = source
        self.window_s = window_s
        self.interval_s = interval_s
        self.history_points = history_points
        self._clock = clock
        self._wall = wall_clock
        self._lock = threading.Lock()
        self._wanted: Wanted = None
        self._pods: dict[Key, dict[str, PodWindow]] = {}
        self._latest: dict[Key, DeploymentMetrics] = {}
        self._history: dict[Key, deque[DeploymentMetrics]] = {}
        self._fleet: FleetMetrics | None = None
        self._fleet_history: deque[FleetMetrics] = deque(maxlen=history_points)
        self._error: str = ""
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshing = threading.Lock()
        self.refreshes = 0

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> MetricsCollector:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="metrics", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10)
            self._thread = None
        self.source.close()

    def __enter__(self) -> MetricsCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._clock()
            try:
                self.refresh()
            except Exception:  # never let one bad round end the thread
                log.exception("metrics refresh failed")
            self._stop.wait(max(0.0, self.interval_s - (self._clock() - started)))

    # -- what is measured ---------------------------------------------------------------------
    def set_wanted(self, keys: Collection[Key] | None) -> None:
        """Scrape only these deployments (plus those in a rollout); None: every one."""
        with self._lock:
            self._wanted = wanted_set(keys)

    def subscribe(self, on_refresh: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_refresh`` (on the collector's thread) after every refresh; returns the
        unsubscribe function. A TUI hands it to ``call_from_thread``."""
        with self._lock:
            self._listeners.append(on_refresh)

        def unsubscribe() -> None:
            with self._lock:
                if on_refresh in self._listeners:
                    self._listeners.remove(on_refresh)

        return unsubscribe

    # -- one round ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """One read of the source, folded into windows, snapshot and history (synchronous)."""
        with self._refreshing:
            with self._lock:
                wanted = self._wanted
            try:
                reading = self.source.read(wanted, self.window_s)
                error = ""
            except SourceError as exc:
                reading, error = Reading(), str(exc)
            now, at = self._clock(), self._wall()
            rates = reading.rates if self.source.windowed else self._fold(reading, now)
            with self._lock:
                self._error = error
                if not error:  # an unreachable source keeps the last numbers, not none
                    self._publish(reading, rates, at)
                self.refreshes += 1
                listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener()
            except Exception:
                log.exception("metrics listener failed")

    def _fold(self, reading: Reading, now: float) -> dict[Key, WindowRates]:
        """Add the scraped counters to each pod's window; the deployments' rates."""
        rates: dict[Key, WindowRates] = {}
        for key in reading.keys | set(reading.pods):
            pods = reading.pods.get(key, {})
            targeted = reading.targeted.get(key, set()) | set(pods)
            windows = self._pods.setdefault(key, {})
            for pod, counters in pods.items():
                window = windows.get(pod)
                if window is None:
                    window = windows[pod] = PodWindow(self.window_s)
                window.add(now, counters)
            # A pod no longer targeted is gone (a finished rollout, a restart); one that is
            # targeted but did not answer this time keeps its last window for a while.
            for pod in [p for p, w in windows.items() if p not in targeted]:
                del windows[pod]
            for pod in [p for p, w in windows.items() if (w.last_at or 0) < now - self.window_s]:
                del windows[pod]
            rates[key] = WindowRates.sum(w.rates() for w in windows.values())
            reading.pod_counts[key] = len(pods)
        return rates

    def _publish(self, reading: Reading, rates: dict[Key, WindowRates], at: float) -> None:
        for key, window_rates in rates.items():
            problems = tuple(reading.problems.get(key, ()))
            metrics = DeploymentMetrics(
                namespace=key[0],
                name=key[1],
                at=at,
                numbers=LatestNumbers.of(window_rates),
                pods=reading.pod_counts.get(key, 0),
                pods_failed=len(problems),
                problems=problems,
                span_s=window_rates.span_s,
                rates=window_rates,
            )
            self._latest[key] = metrics
            series = self._history.get(key)
            if series is None:
                series = self._history[key] = deque(maxlen=self.history_points)
            series.append(metrics)
        # A deployment not read this round is gone if it was asked for (deleted, or no pods
        # left); one merely not wanted now keeps its last numbers for when it is again.
        wanted = self._wanted
        gone = [
            k
            for k in set(self._latest) | set(self._pods)
            if k not in rates and k not in reading.keys and (wanted is None or k in wanted)
        ]
        for key in gone:
            self._latest.pop(key, None)
            self._history.pop(key, None)
            self._pods.pop(key, None)
        measured = [self._latest[k] for k in rates if k in self._latest]
        fleet_rates = WindowRates.sum(m.rates for m in measured)
        self._fleet = FleetMetrics(
            at=at,
            numbers=LatestNumbers.of(fleet_rates),
            deployments=len(measured),
            pods=sum(m.pods for m in measured),
            pods_failed=sum(m.pods_failed for m in measured),
            rates=fleet_rates,
        )
        self._fleet_history.append(self._fleet)

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> dict[Key, DeploymentMetrics]:
        """The latest numbers of every measured deployment, by (namespace, name)."""
        with self._lock:
            return dict(self._latest)

    def get(self, key: Key) -> DeploymentMetrics | None:
        with self._lock:
            return self._latest.get(key)

    def fleet(self) -> FleetMetrics | None:
        """Fleet-wide numbers of the last refresh (None before the first)."""
        with self._lock:
            return self._fleet

    def history(self, key: Key) -> list[DeploymentMetrics]:
        """The deployment's numbers after each refresh, oldest first, at most
        ``history_points`` (a bounded ring): what the plots draw."""
        with self._lock:
            return list(self._history.get(key, ()))

    deployment_history = history

    def fleet_history(self) -> list[FleetMetrics]:
        """The fleet's numbers after each refresh, oldest first (the overview's plots)."""
        with self._lock:
            return list(self._fleet_history)

    def baseline(self, key: Key, before: float | None = None) -> DeploymentMetrics | None:
        """The deployment's numbers over the last window ending at or before ``before`` (Unix
        time; default now) that saw traffic: the pre-rollout reference an SLO gate compares
        against. None when no such window is in the history."""
        with self._lock:
            series = list(self._history.get(key, ()))
        for metrics in reversed(series):
            if (before is None or metrics.at <= before) and metrics.numbers.p99_ms is not None:
                return metrics
        return None

    def wait_for_refreshes(self, count: int = 1, timeout: float = 30.0) -> bool:
        """Block until ``count`` more refreshes happened (True) or ``timeout`` passed."""
        with self._lock:
            target = self.refreshes + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.refreshes >= target:
                    return True
            time.sleep(0.02)
        return False

    @property
    def error(self) -> str:
        """Why the source as a whole failed last time ("" when it answered)."""
        with self._lock:
            return self._error

    def keys(self) -> Iterable[Key]:
        with self._lock:
            return list(self._latest)
