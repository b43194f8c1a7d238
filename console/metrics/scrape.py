"""Scrape sources: every predictor's ``/metrics``, fetched with bounded concurrency.

The targets come from a discovery function (the backend's pods or endpoints); the pages come
from a fetch function (plain HTTP, or the Kubernetes API server's pod proxy). Fetches run on a
fixed pool of threads, each with its own timeout; a read waits for the targets at most
``READ_BUDGET × timeout_s`` in total (room for a large fleet to pass through the pool), targets
that failed last time are fetched after the others, and a target whose previous fetch is still
running is skipped (and reported) instead of queued: a dead target never piles up work or
delays the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from console.metrics.exposition import ExpositionError, parse_counters
from console.metrics.readings import Key, PodCounters
from console.metrics.sources import Reading, Wanted

DEFAULT_CONCURRENCY = 16
DEFAULT_TIMEOUT_S = 2.0
READ_BUDGET = 3.0  # a read's total wait, in per-target timeouts


@dataclass(frozen=True, slots=True)
class Target:
    key: Key  # the deployment
    pod: str
    address: str  # what is fetched, for messages: a URL or "pod proxy ns/pod"


Discover = Callable[[Wanted], tuple[list[Target], set[Key]]]
Fetch = Callable[[Target, float], str]
Scraped = PodCounters | str  # the counters, or why the target gave none


class ScrapeError(Exception):
    """One target's fetch failed; the message is one line saying why."""


class ScrapeSource:
    windowed = False

    def __init__(
        self,
        name: str,
        discover: Discover,
        fetch: Fetch,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._discover = discover
        self._fetch = fetch
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"scrape-{name}")
        self._in_flight: dict[tuple[Key, str], Future[Scraped]] = {}
        self._lock = threading.Lock()
        self._on_close = on_close
        self._failing: set[tuple[Key, str]] = set()  # failed last time: fetched last

    def read(self, wanted: Wanted, window_s: float) -> Reading:
        targets, keys = self._discover(wanted)
        reading = Reading(keys=set(keys))
        for target in targets:
            reading.pods.setdefault(target.key, {})
            reading.targeted.setdefault(target.key, set()).add(target.pod)
        started: dict[Future[Scraped], Target] = {}
        # Targets that answered last time go first, so dead ones queue behind them and never
        # push a healthy target past the read's deadline.
        ordered = sorted(targets, key=lambda t: (t.key, t.pod) in self._failing)
        with self._lock:
            for target in ordered:
                ident = (target.key, target.pod)
                previous = self._in_flight.get(ident)
                if previous is not None and not previous.done():
                    _problem(reading, target, "previous scrape still running")
                    continue
                future = self._pool.submit(self._scrape, target)
                self._in_flight[ident] = future
                started[future] = target
            # Forget finished fetches of targets that went away.
            live = {(t.key, t.pod) for t in targets}
            for ident in [i for i, f in self._in_flight.items() if i not in live and f.done()]:
                del self._in_flight[ident]
        deadline = time.monotonic() + READ_BUDGET * self.timeout_s + 0.5
        pending = set(started)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            done, pending = wait(pending, timeout=left, return_when=FIRST_COMPLETED)
            for future in done:
                self._collect(reading, started[future], future)
        for future in pending:
            _problem(reading, started[future], f"no answer within {self.timeout_s:g} s")
        # Failing: answered with an error, or still busy with an earlier fetch. A target merely
        # not reached before the deadline keeps its place.
        answered = {(key, pod) for key, pods in reading.pods.items() for pod in pods}
        unreached = {(started[f].key, started[f].pod) for f in pending}
        self._failing = ({(t.key, t.pod) for t in targets} - answered - unreached) | (
            unreached & self._failing
        )
        return reading

    def _scrape(self, target: Target) -> Scraped:
        """Fetch and parse one target (on a pool thread); never raises."""
        try:
            return parse_counters(self._fetch(target, self.timeout_s))
        except (ScrapeError, ExpositionError) as exc:
            return str(exc)
        except Exception as exc:  # a client library's own error: keep it to one line
            return f"{type(exc).__name__}: {_first_line(exc)}"

    def _collect(self, reading: Reading, target: Target, future: Future[Scraped]) -> None:
        scraped = future.result()
        if isinstance(scraped, str):
            _problem(reading, target, scraped)
        else:
            reading.pods[target.key][target.pod] = scraped

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._on_close is not None:
            self._on_close()


def _problem(reading: Reading, target: Target, message: str) -> None:
    reading.problems.setdefault(target.key, []).append(f"{target.pod}: {message}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]
