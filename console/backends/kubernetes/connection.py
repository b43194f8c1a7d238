"""The cache's connection state (what the UI shows)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from console.backoff import Backoff as Backoff  # the watchers' reconnects (written once)

Status = Literal["connecting", "live", "reconnecting", "stopped"]


@dataclass(frozen=True)
class ConnectionState:
    """``status`` began at ``since`` (UTC wall time: the UI shows "reconnecting since 12:03:04").

    ``reason`` says why the cache is reconnecting (None otherwise); ``last_error`` is the last
    error any watcher saw and stays after recovery, for diagnostics.
    """

    status: Status
    since: datetime
    reason: str | None = None
    last_error: str | None = None

    @property
    def live(self) -> bool:
        return self.status == "live"


def now() -> datetime:
    return datetime.now(UTC)


class ConnectionTracker:
    """Folds the health of every watcher (one per kind × namespace) into one state.

    Reconnecting while any watcher (or the API server probe) is failing (since the earliest
    failure), live once every watcher has listed and none is failing, connecting before that.
    The probe only ever adds failures: a server the watchers have listed from answers, so live
    does not wait for the probe's first answer.
    """

    def __init__(self, scopes: int, on_change: Callable[[ConnectionState], None]) -> None:
        self._scopes = scopes
        self._on_change = on_change
        self._lock = threading.Lock()
        self._failing: dict[str, tuple[datetime, str]] = {}
        self._healthy: set[str] = set()
        self._last_error: str | None = None
        self._state = ConnectionState("connecting", now())

    @property
    def state(self) -> ConnectionState:
        with self._lock:
            return self._state

    def failed(self, scope: str, reason: str, error: str) -> None:
        with self._lock:
            self._failing.setdefault(scope, (now(), reason))
            self._healthy.discard(scope)
            self._last_error = error
            self._update()

    def recovered(self, scope: str) -> None:
        with self._lock:
            self._failing.pop(scope, None)
            self._healthy.add(scope)
            self._update()

    def cleared(self, scope: str) -> None:
        """``scope`` (one that is not a watcher, like the probe) is not failing any more."""
        with self._lock:
            if self._failing.pop(scope, None) is not None:
                self._update()

    def stopped(self) -> None:
        with self._lock:
            self._state = ConnectionState("stopped", now(), last_error=self._last_error)
        self._on_change(self._state)

    def _update(self) -> None:
        if self._state.status == "stopped":
            return
        if self._failing:
            since, reason = min(self._failing.values(), key=lambda failure: failure[0])
            new = ConnectionState("reconnecting", since, reason, self._last_error)
        elif len(self._healthy) == self._scopes:
            new = ConnectionState("live", now(), last_error=self._last_error)
        else:
            new = ConnectionState("connecting", self._state.since, last_error=self._last_error)
        old = self._state
        if (new.status, new.reason, new.last_error) == (old.status, old.reason, old.last_error):
            return
        if new.status == old.status and new.status != "reconnecting":
            new = ConnectionState(new.status, old.since, new.reason, new.last_error)
        self._state = new
        # Called under the lock so subscribers see states in order; the callee only queues.
        self._on_change(new)
