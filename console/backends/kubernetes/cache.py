"""The fleet cache: what the console reads instead of the API server (as k9s's informers).

For Deployments, ReplicaSets, Pods, Jobs and Events of the profile's namespaces (all when the
list is empty) one watcher thread per kind × namespace lists, then watches from the list's
resourceVersion (see ``watcher``). Consumers read the cache (``list``, ``get``) and subscribe
to coalesced change batches; the UI shows ``connection`` ("reconnecting since 12:03:04").

Objects are kept as the API server's JSON (dicts), not the client's models. Measured with
``python -m bench.console.fleet_cache`` on the test cluster (2 shared cores, so noisy): for 2,000
Deployments (3.7 MiB of list JSON) ``ApiClient.deserialize`` into ``V1Deployment`` models took
2.0-3.5× the time of ``json.loads`` and held 2.6× the memory (46 vs 17.5 MiB); per watch event
the client's ``Watch`` (parse, dump, parse, build models) took 2.8× our parse. Dropping
``managedFields`` halves what is held again: the cache holds 2,000 Deployments in ~8.5 MiB and
5,000 in ~21.5 MiB. Readers get the stored dicts: treat them as read-only.

Every scope holds one connection for its watch: give the ApiClient a
``connection_pool_maxsize`` of at least kinds × namespaces, or urllib3 warns that it discards
connections (harmless: they are reopened).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.backends.kubernetes.connection import ConnectionState, ConnectionTracker
from console.backends.kubernetes.kinds import ALL_KINDS, Kind, list_call
from console.backends.kubernetes.notify import Changes, Notifier, Subscriber
from console.backends.kubernetes.probe import ProbeSettings, ServerProbe
from console.backends.kubernetes.store import Obj, Store
from console.backends.kubernetes.watcher import ScopeWatcher, WatchSettings

__all__ = [
    "ALL_KINDS",
    "CacheStats",
    "Changes",
    "ConnectionState",
    "FleetCache",
    "Kind",
    "ProbeSettings",
    "WatchSettings",
]

# After the server answers again, each watcher retries within this many seconds (at random):
# every console's watchers together do not arrive at the same instant.
RESUME_JITTER_SECONDS = 1.0
DEFAULT_PROBE = ProbeSettings()


@dataclass(frozen=True)
class CacheStats:
    objects: dict[Kind, int]
    relists: int  # lists after each scope's first (410 Gone, watch ERROR events)
    reconnects: int  # connection failures retried with backoff
    resumes: int  # times the probe saw the server answer again and woke the watchers
    events: int  # watch events applied
    batches: int  # notification batches delivered


class FleetCache:
    """List+watch cache of a fleet. ``start()`` once, ``stop()`` once; reads from any thread."""

    def __init__(
        self,
        api_client: Any,
        namespaces: Sequence[str] = (),
        kinds: Sequence[Kind] = ALL_KINDS,
        *,
        notify_interval: float = 0.2,
        settings: WatchSettings | None = None,
        probe: ProbeSettings | None = DEFAULT_PROBE,
    ) -> None:
        """``probe=None`` leaves the watches alone to find out about the server (the way the
        cache worked before the probe; the reconnect benchmark's baseline)."""
        scopes: list[str | None] = list(dict.fromkeys(namespaces)) or [None]
        self.kinds = tuple(kinds)
        self._store = Store(self.kinds)
        self._notifier = Notifier(notify_interval)
        self._tracker = ConnectionTracker(
            len(self.kinds) * len(scopes), self._notifier.connection_changed
        )
        self._stopping = threading.Event()
        self._probe = (
            ServerProbe(api_client, self._tracker, self._stopping, self._resume_watches, probe)
            if probe is not None
            else None
        )
        self._watchers = [
            ScopeWatcher(
                kind,
                namespace,
                list_call(api_client, kind, namespace),
                self._store,
                self._tracker,
                self._notifier,
                self._stopping,
                settings or WatchSettings(),
            )
            for kind in self.kinds
            for namespace in scopes
        ]

    # ----- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._notifier.start()
        for watcher in self._watchers:
            watcher.thread.start()
        if self._probe is not None:
            self._probe.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every thread; returns within about ``timeout`` whatever the server does."""
        self._stopping.set()
        for watcher in self._watchers:
            watcher.wake()
            watcher.interrupt()
        deadline = time.monotonic() + timeout
        threads = [w.thread for w in self._watchers]
        if self._probe is not None and self._probe.thread.is_alive():
            threads.append(self._probe.thread)
        for thread in threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._tracker.stopped()
        self._notifier.stop(max(0.1, deadline - time.monotonic()))

    def _resume_watches(self) -> None:
        for watcher in self._watchers:
            watcher.resume(jitter=random.uniform(0.0, RESUME_JITTER_SECONDS))

    def __enter__(self) -> FleetCache:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_synced(self, timeout: float) -> bool:
        """True once every scope has listed (at least once), False after ``timeout``."""
        deadline = time.monotonic() + timeout
        return all(
            watcher.synced.wait(max(0.0, deadline - time.monotonic())) for watcher in self._watchers
        )

    # ----- reads -------------------------------------------------------------------------

    def list(self, kind: Kind, namespace: str | None = None) -> list[Obj]:
        return self._store.list(kind, namespace)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        return self._store.get(kind, namespace, name)

    @property
    def connection(self) -> ConnectionState:
        return self._tracker.state

    def unanswered(self) -> tuple[datetime, str] | None:
        """Since when and why the API server has not answered the probe; None while it does
        (or without a probe)."""
        probe = self._probe
        if probe is None or not probe.failing or probe.failing_since is None:
            return None
        return probe.failing_since, probe.failure

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """``callback(changes)`` from the notifier thread, at most every ``notify_interval``.

        Returns the function that unsubscribes.
        """
        return self._notifier.subscribe(callback)

    def stats(self) -> CacheStats:
        return CacheStats(
            objects=self._store.counts(),
            relists=sum(w.relists for w in self._watchers),
            reconnects=sum(w.reconnects for w in self._watchers),
            resumes=self._probe.recoveries if self._probe is not None else 0,
            events=sum(w.events for w in self._watchers),
            batches=self._notifier.batches,
        )
