"""Opening a session, once for every front-end: the profile → who acts (the audit's "who",
as the cluster's API server names the user) → which namespaces → the backend of each cluster.

A session is one cluster's: its backend is keyed by the cluster's name in the profile
(``default`` for a profile with a ``[kubernetes]`` table only, and for the local runtime).
A profile naming several clusters is opened as one session per cluster side by side
(``console.core.clusters``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from console import audit
from console.audit import AuditContext
from console.backends import open_backend
from console.backends.base import Backend, ReviewsUser
from console.core.guard import Guard
from console.profile import DEFAULT_CLUSTER, Profile, ProfileError


@dataclass(frozen=True)
class SessionRequest:
    """What a front-end was asked to open (the CLI's global flags, the deck's)."""

    context: str | None = None  # a kube context other than the profile's
    namespace: str | None = None  # one namespace instead of the profile's
    all_namespaces: bool = False
    read_only: bool = False  # --readonly; a read-only profile is read-only whatever this says
    parallel: int | None = None  # requests in flight at once (a batch's --max-parallel)
    request_timeout: float | None = None  # seconds waited on the cluster; 0: no limit
    cluster: str | None = None  # one of the profile's [[clusters]] by name

    def namespaces(self) -> Sequence[str] | None:
        """The namespaces to read: () for all of them, None for the profile's."""
        if self.all_namespaces:
            return ()
        if self.namespace:
            return (self.namespace,)
        return None


def widened(profile: Profile, request: SessionRequest) -> tuple[Profile, SessionRequest]:
    """``--context a,b`` (several contexts, comma-separated): the profile with one cluster per
    context, named by it, and the request without the flag; else both as they are."""
    contexts = [c.strip() for c in (request.context or "").split(",") if c.strip()]
    if len(contexts) < 2:
        return profile, request
    if len(set(contexts)) != len(contexts):
        raise ProfileError(f"--context {request.context!r} names a context twice")
    return profile.on_contexts(contexts), dataclasses.replace(request, context=None)


def on_cluster(profile: Profile, request: SessionRequest) -> Profile:
    """The profile narrowed to the cluster the session opens: ``--cluster NAME``, else the
    profile's only one. A :class:`Session` holds one cluster (the CLI opens every cluster of a
    profile naming several with ``console.core.clusters.open_sessions``, and so does the deck);
    asked for one without ``--cluster``, a profile naming several is refused here."""
    if request.cluster is not None:
        return profile.for_cluster(request.cluster)
    if len(profile.clusters) > 1:
        names = ", ".join(c.name for c in profile.clusters)
        raise ProfileError(
            f"profile {profile.name!r} names {len(profile.clusters)} clusters ({names}): "
            "choose one with --cluster NAME"
        )
    return profile.for_cluster(profile.clusters[0].name) if profile.clusters else profile


def is_read_only(profile: Profile, request: SessionRequest) -> bool:
    """Whether nothing may change in the session: ``--readonly``, or every cluster it opens
    read-only (one read-only cluster of several refuses its own targets when acted on)."""
    if request.read_only:
        return True
    if request.cluster is None and len(profile.clusters) > 1:
        return all(c.read_only for c in profile.clusters)
    return on_cluster(profile, request).read_only


def kube_context(profile: Profile, request: SessionRequest) -> str | None:
    """The kube context acted in (the flag's, else the profile's); None for the local runtime."""
    settings = profile.kubernetes
    return request.context or (settings.context if settings else None)


def user_of(profile: Profile, request: SessionRequest) -> str:
    """Who acts before the cluster is asked: the kube context's user entry, else the OS user."""
    settings = profile.kubernetes
    kube_user = None
    if settings is not None and settings.kubeconfig is not None:
        kube_user = audit.kube_context_user(settings.kubeconfig, kube_context(profile, request))
    return audit.current_user(kube_user)


@dataclass
class Session:
    """An open profile: who acts, whether read-only, and the backend of each cluster."""

    profile: Profile
    user: str
    read_only: bool
    context: str | None  # the kube context (None: the local runtime)
    backends: Mapping[str, Backend]  # by cluster name; one today
    audit_path: Path | None = None  # None: the default audit log

    @property
    def backend(self) -> Backend:
        """The one cluster's backend (a profile names one cluster today)."""
        if len(self.backends) != 1:
            raise ValueError(f"this session holds {len(self.backends)} clusters; name one")
        return next(iter(self.backends.values()))

    @property
    def cluster(self) -> str:
        """The name of the session's one cluster (``default`` for a ``[kubernetes]`` table or
        the local runtime)."""
        if len(self.backends) != 1:
            raise ValueError(f"this session holds {len(self.backends)} clusters; name one")
        return next(iter(self.backends))

    @property
    def guard(self) -> Guard:
        return Guard(
            self.backend,
            self.read_only,
            self.profile.name,
            self.user,
            self.profile.autoscaling.engine,
        )

    @property
    def audit(self) -> AuditContext:
        """Every audit line names the cluster when the profile names its clusters."""
        cluster = self.cluster if self.cluster != DEFAULT_CLUSTER else None
        return AuditContext(
            self.profile.name, self.context, self.user, self.audit_path, cluster=cluster
        )

    def close(self) -> None:
        for backend in self.backends.values():
            backend.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cluster_name(profile: Profile) -> str:
    """The key of the profile's cluster in :attr:`Session.backends`: its name in the profile
    (``default`` for a ``[kubernetes]`` table, and for the local runtime)."""
    return profile.clusters[0].name if profile.clusters else DEFAULT_CLUSTER


def open_session(profile: Profile, request: SessionRequest) -> Session:
    """Open the profile's backend (started, its cache listed) for the user the profile acts
    as; raises ``BackendUnavailable`` when it cannot be opened."""
    profile = on_cluster(profile, request)
    read_only = is_read_only(profile, request)
    user = user_of(profile, request)
    context = kube_context(profile, request)
    backend = open_backend(
        profile,
        context=request.context,
        namespaces=request.namespaces(),
        read_only=read_only,
        user=user,
        parallel=request.parallel,
        request_timeout=request.request_timeout,
    )
    if isinstance(backend, ReviewsUser):
        # The audit's "who" is the user the API server sees (`kubectl auth whoami`): a
        # kubeconfig entry's name is only a local label for credentials. A server that cannot
        # say (older than 1.28) leaves the entry's name.
        reviewed = backend.reviewed_user()
        if reviewed:
            user = reviewed
            backend.act_as(user)
    return Session(profile, user, read_only, context, {cluster_name(profile): backend})


def session_on(
    profile: Profile,
    backend: Backend,
    *,
    user: str,
    read_only: bool = False,
    context: str | None = None,
    audit_path: Path | None = None,
) -> Session:
    """A session over a backend already open (tests, and hosts that open their own)."""
    read_only = read_only or profile.read_only
    return Session(profile, user, read_only, context, {cluster_name(profile): backend}, audit_path)
