"""Backends behind the console's one interface (see ``base``)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from console.backends.base import Backend
from console.profile import Profile

SYNC_SECONDS = 30.0
REFUSAL_SECONDS = 3.0


class BackendUnavailable(Exception):
    """The profile's backend cannot be opened; the message says what to do."""


def open_backend(
    profile: Profile,
    *,
    context: str | None = None,
    namespaces: Sequence[str] | None = None,
    read_only: bool = False,
    user: str = "",
    parallel: int | None = None,
) -> Backend:
    """The backend a profile names, started (its cache listed) and ready to read; ``parallel``
    (a batch's ``--max-parallel``; default the profile's) sizes its connection pool."""
    if profile.backend == "local":
        # The local runtime: started on demand (one agent per profile), then read from its cache.
        from console.backends.local import LocalBackend
        from console.local.launch import AgentUnavailable

        try:
            return LocalBackend(profile, namespaces=namespaces, read_only=read_only, user=user)
        except (AgentUnavailable, OSError) as exc:
            raise BackendUnavailable(f"profile {profile.name!r}: {exc}") from None
    from console.backends.kubernetes.backend import KubernetesBackend
    from console.backends.kubernetes.probe import NOT_ANSWERING

    try:
        backend = KubernetesBackend(
            profile,
            context=context,
            namespaces=namespaces,
            read_only=read_only,
            user=user,
            parallel=parallel,
        )
    except Exception as exc:  # the kubeconfig or context is unusable: say which
        raise BackendUnavailable(f"cannot use profile {profile.name!r}: {exc}") from None
    started = time.monotonic()
    refused_since: float | None = None
    while not backend.start(timeout=0.25):
        detail = backend.connection().detail
        unanswered = backend.cache.unanswered()
        if unanswered is not None and unanswered[1] == NOT_ANSWERING:
            # Hung (accepts connections, never answers): the probe's two timeouts say so
            # within seconds; the lists would wait out their read timeouts and retry.
            backend.close(wait=0.5)
            raise BackendUnavailable(
                f"profile {profile.name!r}: the cluster did not answer ({NOT_ANSWERING})"
            )
        now = time.monotonic()
        # A refusal that lasts is RBAC (a restarting API server refuses for about a second).
        refused = "403" in detail or "401" in detail
        refused_since = (refused_since or now) if refused else None
        if (refused_since is not None and now - refused_since > REFUSAL_SECONDS) or (
            now - started > SYNC_SECONDS
        ):
            backend.close()
            why = "may not list what it needs" if refused else "did not answer in time"
            raise BackendUnavailable(f"profile {profile.name!r}: the cluster {why} ({detail})")
    return backend
