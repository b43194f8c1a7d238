"""``fleetdeck`` with no subcommand: open the profile's backend and run the deck on it."""

from __future__ import annotations

import gc
import sys
from typing import Any

from console.backends.base import Backend
from console.core.clusters import ClusterSessions, open_sessions
from console.core.session import SessionRequest, open_session, widened
from console.profile import Profile, load_profile
from console.tui.context import ClusterDecks, DeckContext
from console.tui.session_switch import MetricsFor, SessionSwitch, close_quietly
from console.views.fleet_data import MetricsSource


def open_deck(
    profile_name: str | None, request: SessionRequest, metrics: MetricsSource | None = None
) -> int:
    """Run the deck until the user quits (the terminal is restored by Textual on exit)."""
    from console.tui.app import DeckApp

    profile = load_profile(profile_name)
    print(f"fleetdeck: opening profile {profile.name!r}…", file=sys.stderr, flush=True)
    profile, request = widened(profile, request)  # --context a,b: a cluster per context
    if request.cluster is None and len(profile.clusters) > 1:
        return open_deck_on_clusters(profile, request, metrics)
    session = open_session(profile, request)
    # A deck given its metrics keeps them; else each session (`:ctx`, `:ns`) gets its own.
    metrics_for = metrics_collector if metrics is None else None
    collector = metrics_collector(session.profile, session.backend) if metrics is None else None
    switch = SessionSwitch(profile, request, metrics_for)
    app = DeckApp(
        session.backend,
        session.profile,  # on the cluster chosen (its store, metrics, read-only flag)
        read_only=session.read_only,
        context=session.context,
        user=session.user,
        metrics=metrics or collector,
        switch=switch,
        session=session,
        remember=True,
    )
    app.collector = collector
    settle_heap()
    try:
        app.run()
    finally:
        close_quietly(app.session, app.collector)  # the session the deck was on at the end
    return 0


def open_deck_on_clusters(
    profile: Profile, request: SessionRequest, metrics: MetricsSource | None = None
) -> int:
    """The deck over every cluster the profile names, opened side by side (a cluster that
    cannot be opened is shown as such; the deck opens if any can), each with its own
    collector, RBAC answers and read-only flag."""
    from console.tui.app import DeckApp

    with open_sessions(profile, request) as fleet:
        clusters = cluster_decks(fleet, lambda p, b: metrics or metrics_collector(p, b))
        try:
            home = clusters.home
            app = DeckApp(home.backend, home.profile, clusters=clusters, remember=True)
            settle_heap()
            app.run()
        finally:
            for deck in clusters.decks.values():
                close_quietly(None, deck.metrics)
    return 0


def settle_heap() -> None:
    """Move what is alive now (the caches just listed: every Deployment, ReplicaSet and pod as
    JSON, millions of objects at 5,000 Deployments) out of the garbage collector's sight: its
    full collections then walk what changes, not the whole fleet. Reference counting still
    frees what the watches replace (JSON holds no cycles). Measured on the Changes screen's read
    over 50,000 ReplicaSets: 1.9-2.1 s of 5.4-5.8 s in collections, 0.6 s after."""
    gc.freeze()


def cluster_decks(fleet: ClusterSessions, metrics_for: MetricsFor) -> ClusterDecks:
    """One deck context per open cluster of ``fleet`` (its session's profile, user, context and
    read-only flag, and the metrics ``metrics_for`` starts on it), and those not opened."""
    decks = {
        name: DeckContext(
            session.backend,
            session.profile,
            read_only=session.read_only,
            context=session.context,
            user=session.user,
            metrics=metrics_for(session.profile, session.backend),
            cluster=name,
        )
        for name, session in fleet.sessions.items()
    }
    return ClusterDecks(decks, dict(fleet.unavailable))


def metrics_collector(profile: Profile, backend: Backend) -> Any:
    """The profile's metrics collector, started; None when it cannot start (the columns then
    show ``-`` and the deck says nothing more: metrics are an aid, not a requirement)."""
    try:
        from console.metrics import collector_for

        return collector_for(profile, backend).start()
    except Exception:
        return None
