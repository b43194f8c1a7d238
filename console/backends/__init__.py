"""Backends behind the console's one interface (see ``base``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from console.backends.base import Backend
from console.profile import Profile

SYNC_SECONDS = 30.0
REFUSAL_SECONDS = 3.0
# A server the probe cannot reach (connection refused, DNS, TLS) for this long is given up on:
# a restarting API server refuses connections for a second or two, not eight.
UNREACHABLE_SECONDS = 8.0


@dataclass(frozen=True)
class DeploymentName:
    namespace: str
    name: str
    model: str


def quick_deployments(
    profile: Profile,
    *,
    context: str | None = None,
    namespace: str | None = None,
    timeout: float = 1.0,
) -> list[DeploymentName]:
    """The profile's deployments (in ``namespace``, else the profile's namespaces) read at once
    without opening a backend: one list request, or the running local agent's snapshot (the
    agent is not started). For shell completion, which must answer within a TAB."""
    if profile.backend == "local":
        from console.backends.local import running_deployments

        found = running_deployments(profile, timeout)
    else:
        from console.backends.kubernetes.backend import list_deployments

        found = list_deployments(profile, context, namespace, timeout)
    return [
        DeploymentName(ns, name, model)
        for ns, name, model in found
        if namespace is None or ns == namespace
    ]


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
    request_timeout: float | None = None,
) -> Backend:
    """The backend a profile names, started (its cache listed) and ready to read; ``parallel``
    (a batch's ``--max-parallel``; default the profile's) sizes its connection pool.
    ``request_timeout`` (seconds; 0: no limit; None: :data:`SYNC_SECONDS` to open and each
    request's own) bounds opening a cluster and each request to it."""
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
            request_timeout=request_timeout,
        )
    except Exception as exc:  # the kubeconfig or context is unusable: say which
        raise BackendUnavailable(f"cannot use profile {profile.name!r}: {exc}") from None
    opening = SYNC_SECONDS if request_timeout is None else request_timeout or float("inf")
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
        if unanswered is not None:
            since, reason = unanswered
            if (datetime.now(UTC) - since).total_seconds() > UNREACHABLE_SECONDS:
                backend.close(wait=0.5)
                raise BackendUnavailable(
                    f"profile {profile.name!r}: the cluster cannot be reached ({reason})"
                )
        now = time.monotonic()
        # A refusal that lasts is RBAC (a restarting API server refuses for about a second).
        refused = "403" in detail or "401" in detail
        refused_since = (refused_since or now) if refused else None
        if (refused_since is not None and now - refused_since > REFUSAL_SECONDS) or (
            now - started > opening
        ):
            # Not waiting on the lists: on a hung server they are stuck in a handshake or a
            # read (their threads are daemons), and waiting on them outlasted the timeout.
            backend.close(wait=0.5)
            bound = "the request timeout" if request_timeout else "the time allowed to open it"
            why = (
                "may not list what it needs"
                if refused
                else f"did not answer within {bound} ({opening:g}s)"
            )
            more = f": {detail}" if detail else ""
            raise BackendUnavailable(f"profile {profile.name!r}: the cluster {why}{more}")
    return backend
