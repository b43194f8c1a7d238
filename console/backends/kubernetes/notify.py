"""Coalesced change notifications, delivered from one notifier thread.

Watchers only record what changed; the notifier hands subscribers one batch at most every
``interval`` seconds. A burst of thousands of events (a relist, a rollout across the fleet)
becomes a few batches, and the UI never runs on a watcher thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from console.backends.kubernetes.connection import ConnectionState
from console.backends.kubernetes.kinds import Kind
from console.backends.kubernetes.store import Key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Changes:
    """What changed since the previous batch: keys per kind, and the connection state if it
    changed (its latest value)."""

    keys: Mapping[Kind, frozenset[Key]] = field(default_factory=dict)
    connection: ConnectionState | None = None

    @property
    def kinds(self) -> frozenset[Kind]:
        return frozenset(self.keys)


Subscriber = Callable[[Changes], None]


class Notifier:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[Kind, set[Key]] = {}
        self._connection: ConnectionState | None = None
        self._subscribers: list[Subscriber] = []
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-cache-notifier", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def changed(self, kind: Kind, keys: Iterable[Key]) -> None:
        with self._lock:
            pending = self._pending.setdefault(kind, set())
            pending.update(keys)
            if not pending:
                del self._pending[kind]
                return
        self._dirty.set()

    def connection_changed(self, state: ConnectionState) -> None:
        with self._lock:
            self._connection = state
        self._dirty.set()

    def _run(self) -> None:
        last = float("-inf")
        while not self._stopping.is_set():
            self._dirty.wait()
            # Let the burst accumulate until `interval` has passed since the last delivery.
            remaining = last + self.interval - time.monotonic()
            if remaining > 0 and self._stopping.wait(remaining):
                return
            with self._lock:
                self._dirty.clear()
                batch = Changes(
                    {kind: frozenset(keys) for kind, keys in self._pending.items()},
                    self._connection,
                )
                self._pending = {}
                self._connection = None
                subscribers = list(self._subscribers)
            last = time.monotonic()
            if not batch.keys and batch.connection is None:
                continue
            self.batches += 1
            for callback in subscribers:
                try:
                    callback(batch)
                except Exception:  # one broken subscriber must not silence the others
                    log.exception("fleet cache subscriber %r failed", callback)
