"""``fleetdeck`` with no subcommand: open the profile's backend and run the deck on it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from console import audit
from console.backends import open_backend
from console.profile import Profile, load_profile
from console.views.fleet_data import MetricsSource


def _kube_user(profile: Profile, context: str | None) -> str:
    settings = profile.kubernetes
    kube_user = None
    if settings is not None and settings.kubeconfig is not None:
        kube_user = audit.kube_context_user(settings.kubeconfig, context or settings.context)
    return audit.current_user(kube_user)


def open_deck(args: argparse.Namespace, metrics: MetricsSource | None = None) -> int:
    """Run the deck until the user quits (the terminal is restored by Textual on exit)."""
    from console.tui.app import DeckApp

    profile = load_profile(args.profile)
    read_only = bool(args.readonly or profile.read_only)
    namespaces: Sequence[str] | None = None
    if args.all_namespaces:
        namespaces = ()
    elif args.namespace:
        namespaces = (args.namespace,)
    context = args.context or (profile.kubernetes.context if profile.kubernetes else None)
    user = _kube_user(profile, args.context)
    print(f"fleetdeck: opening profile {profile.name!r}…", file=sys.stderr, flush=True)
    backend = open_backend(
        profile, context=args.context, namespaces=namespaces, read_only=read_only, user=user
    )
    collector = metrics_collector(profile, backend) if metrics is None else None
    try:
        DeckApp(
            backend,
            profile,
            read_only=read_only,
            context=context,
            user=user,
            metrics=metrics or collector,
        ).run()
    finally:
        if collector is not None:
            collector.stop()
        backend.close()
    return 0


def metrics_collector(profile: Profile, backend: Any) -> Any:
    """The profile's metrics collector, started; None when it cannot start (the columns then
    show ``-`` and the deck says nothing more: metrics are an aid, not a requirement)."""
    try:
        from console.metrics import collector_for

        return collector_for(profile, backend).start()
    except Exception:
        return None
