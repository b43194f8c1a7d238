"""``fleetdeck`` with no subcommand: open the profile's backend and run the deck on it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from console.backends.base import Backend
from console.core.session import SessionRequest, open_session
from console.profile import Profile, load_profile
from console.views.fleet_data import MetricsSource


def open_deck(args: argparse.Namespace, metrics: MetricsSource | None = None) -> int:
    """Run the deck until the user quits (the terminal is restored by Textual on exit)."""
    from console.tui.app import DeckApp

    profile = load_profile(args.profile)
    request = SessionRequest(
        context=args.context,
        namespace=args.namespace,
        all_namespaces=bool(args.all_namespaces),
        read_only=bool(args.readonly),
    )
    print(f"fleetdeck: opening profile {profile.name!r}…", file=sys.stderr, flush=True)
    session = open_session(profile, request)
    collector = metrics_collector(profile, session.backend) if metrics is None else None
    try:
        DeckApp(
            session.backend,
            profile,
            read_only=session.read_only,
            context=session.context,
            user=session.user,
            metrics=metrics or collector,
        ).run()
    finally:
        if collector is not None:
            collector.stop()
        session.close()
    return 0


def metrics_collector(profile: Profile, backend: Backend) -> Any:
    """The profile's metrics collector, started; None when it cannot start (the columns then
    show ``-`` and the deck says nothing more: metrics are an aid, not a requirement)."""
    try:
        from console.metrics import collector_for

        return collector_for(profile, backend).start()
    except Exception:
        return None
