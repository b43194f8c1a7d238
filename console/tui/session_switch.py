"""``:ctx`` and ``:ns``: the deck moves to another kube context or namespace set without a
restart. A new session is opened (``core.session.open_session``) off the event loop; when it
is open the deck's screens are rebuilt on it and the old session is closed, also off the loop.
A session that cannot be opened is said, and the deck stays where it was.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from console.backends.base import Backend
from console.core.session import Session, SessionRequest, open_session
from console.profile import Profile
from console.views.fleet_data import MetricsSource

ALL_NAMESPACES = "all"  # `:ns all` (and `:ns -A`, as kubectl's flag)
PROFILE_NAMESPACES = "profile"  # `:ns profile`: back to the profile's set


@runtime_checkable
class Stoppable(Protocol):
    """A metrics collector: it runs until stopped."""

    def stop(self) -> None: ...


MetricsFor = Callable[[Profile, Backend], MetricsSource | None]  # started, or None


@dataclass
class SessionSwitch:
    """How the deck opens another session: the profile, what was asked last, and how to start
    a metrics collector on a new backend (None: the deck shows no metrics)."""

    profile: Profile
    request: SessionRequest
    metrics_for: MetricsFor | None = None
    opener: Callable[[Profile, SessionRequest], Session] = open_session

    def on_context(self, context: str) -> SessionRequest:
        return replace(self.request, context=context)

    def on_namespaces(self, word: str) -> SessionRequest:
        """``all`` or ``-A``: every namespace; ``profile``: the profile's; else that one."""
        if word in (ALL_NAMESPACES, "-A", "--all-namespaces"):
            return replace(self.request, namespace=None, all_namespaces=True)
        if word == PROFILE_NAMESPACES:
            return replace(self.request, namespace=None, all_namespaces=False)
        return replace(self.request, namespace=word, all_namespaces=False)

    def open(self, request: SessionRequest) -> tuple[Session, MetricsSource | None]:
        """The new session and its metrics collector (blocking: call from a worker). Raises
        what opening raises; a collector that cannot start is none."""
        session = self.opener(self.profile, request)
        metrics: MetricsSource | None = None
        if self.metrics_for is not None:
            try:
                metrics = self.metrics_for(session.profile, session.backend)
            except Exception:  # metrics are an aid: the deck opens without them
                metrics = None
        return session, metrics


def close_quietly(session: Session | None, metrics: object) -> None:
    """Stop an old collector and close an old session (blocking: from a worker); what fails
    there no longer matters to the deck."""
    if isinstance(metrics, Stoppable):
        with contextlib.suppress(Exception):
            metrics.stop()
    if session is not None:
        with contextlib.suppress(Exception):
            session.close()
