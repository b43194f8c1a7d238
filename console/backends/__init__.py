"""Backends behind the console's one interface (see ``base``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from console.profile import Profile


class BackendUnavailable(Exception):
    """The profile's backend cannot be opened; the message says what to do."""


def open_backend(
    profile: Profile,
    *,
    context: str | None = None,
    namespaces: Sequence[str] | None = None,
    read_only: bool = False,
    user: str = "",
) -> Any:
    """The backend a profile names, started (its cache listed) and ready to read."""
    if profile.backend == "local":
        raise BackendUnavailable(
            f"profile {profile.name!r} uses the local runtime, which is not built yet; "
            "use a Kubernetes profile, e.g. --profile kwok (see `tests/infra/cluster up`)"
        )
    from console.backends.kubernetes.backend import KubernetesBackend

    try:
        backend = KubernetesBackend(
            profile, context=context, namespaces=namespaces, read_only=read_only, user=user
        )
    except Exception as exc:  # the kubeconfig or context is unusable: say which
        raise BackendUnavailable(f"cannot use profile {profile.name!r}: {exc}") from None
    if not backend.start():
        state = backend.connection()
        backend.close()
        raise BackendUnavailable(
            f"the cluster of profile {profile.name!r} did not answer in time ({state.detail})"
        )
    return backend
