"""A session over every cluster a profile names: one :class:`Session` per cluster, opened side
by side, read as one fleet, and a deployment found by its whole identity
(``CLUSTER/NAMESPACE/NAME``) or by a short form where that is unambiguous.

A cluster that cannot be opened does not hold up the others: it is kept in
:attr:`ClusterSessions.unavailable` with the reason, reads say so beside what the other
clusters answered, and a short name is not resolved while it is away (it could be there).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from console.backends import BackendUnavailable
from console.backends.base import BackendError
from console.core.session import Session, SessionRequest, open_session, widened
from console.core.targets import Target, TargetName
from console.model import ModelDeployment, TrainingJob
from console.profile import Profile, ProfileError
from console.views.format import printable

Row = TypeVar("Row", ModelDeployment, TrainingJob)
Kind = Literal["deployment", "job"]


REST = "*"  # in a wave list naming clusters: every cluster not named, in the profile's order


_SIZE = re.compile(r"\d+(\.\d+)?%?")  # a wave size: 1, 10%, 12.5%


def names_clusters(waves: str | None) -> bool:
    """Whether a ``--waves`` value names clusters (``canary,2nd-dc,*``) rather than sizes
    (``1,10%,100%``): a word of it is not a size (one mixing both is refused, saying so)."""
    words = [w.strip() for w in (waves or "").split(",") if w.strip()]
    return bool(words) and not all(_SIZE.fullmatch(w) for w in words)


def cluster_order(waves: str, known: Sequence[str]) -> list[str]:
    """The clusters in the order a ``--waves canary,eu-west,*`` list gives (``*``: the rest,
    in the profile's order). Raises ``ProfileError`` naming what to fix: a word that is no
    cluster of ``known``, one named twice, sizes mixed with names."""
    words = [w.strip() for w in waves.split(",") if w.strip()]
    sizes = [w for w in words if _SIZE.fullmatch(w)]
    if sizes:
        raise ProfileError(
            f"--waves {waves!r} mixes wave sizes ({', '.join(sizes)}) with cluster names: give "
            "either sizes (1,10%,100%) or clusters in order (canary,eu-west,*)"
        )
    unknown = [w for w in words if w != REST and w not in known]
    if unknown:
        raise ProfileError(
            f"--waves names {', '.join(map(repr, unknown))}, not a cluster of the profile "
            f"({', '.join(known)})"
        )
    twice = sorted({w for w in words if words.count(w) > 1})
    if twice:
        raise ProfileError(f"--waves names {', '.join(twice)} more than once")
    named = [w for w in words if w != REST]
    if REST not in words:
        return named
    at = words.index(REST)
    rest = [c for c in known if c not in named]
    return [*named[:at], *rest, *named[at:]]


class AmbiguousTarget(ValueError):
    """A short name found in several places (bad usage); the message lists them."""


class TargetNotFound(LookupError):
    """A short name found nowhere the session looks; the message says where it looked."""


@dataclass
class ClusterSessions:
    """The open clusters by name, in the profile's order, and those that could not be opened."""

    profile: Profile
    sessions: dict[str, Session]
    unavailable: dict[str, str] = field(default_factory=dict)  # cluster -> why

    @property
    def several(self) -> bool:
        """Whether this session spans more than one cluster (a CLUSTER column is shown)."""
        return len(self.sessions) + len(self.unavailable) > 1

    def only(self, command: str) -> Session:
        """The one cluster's session, for a command that acts on one cluster."""
        if len(self.sessions) == 1 and not self.unavailable:
            return next(iter(self.sessions.values()))
        names = ", ".join([*self.sessions, *self.unavailable])
        raise ProfileError(
            f"{command} works on one cluster: add --cluster NAME "
            f"(profile {self.profile.name!r} names {names})"
        )

    def session(self, cluster: str) -> Session:
        if cluster in self.sessions:
            return self.sessions[cluster]
        if cluster in self.unavailable:
            raise BackendUnavailable(f"cluster {cluster}: {self.unavailable[cluster]}")
        names = ", ".join([*self.sessions, *self.unavailable])
        raise ProfileError(f"profile {self.profile.name!r} has no cluster {cluster!r} ({names})")

    # ----- one fleet ---------------------------------------------------------------------
    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        """Every open cluster's deployments, each row naming its cluster when there are several."""
        return [
            self._stamped(row, cluster)
            for cluster, session in self.sessions.items()
            for row in session.backend.deployments(selector)
        ]

    def jobs(self) -> list[TrainingJob]:
        return [
            self._stamped(job, cluster)
            for cluster, session in self.sessions.items()
            for job in session.backend.jobs()
        ]

    def _stamped(self, row: Row, cluster: str) -> Row:
        return dataclasses.replace(row, cluster=cluster) if self.several else row

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        """``on_change`` when any open cluster changes; returns what unsubscribes from all."""
        undo = [s.backend.subscribe(on_change) for s in self.sessions.values()]

        def unsubscribe() -> None:
            for each in undo:
                each()

        return unsubscribe

    def problems(self) -> list[str]:
        """What a read over every cluster leaves out: one line per cluster not opened."""
        return [f"cluster {name}: {why}" for name, why in self.unavailable.items()]

    # ----- targets -----------------------------------------------------------------------
    def resolve(
        self, typed: TargetName, namespace: str | None = None, kind: Kind = "deployment"
    ) -> Target:
        """The deployment (or job) ``typed`` names (``namespace``: the ``-n`` flag). One
        cluster: as ever, NAME is in ``-n`` or the default namespace. Several: a short form is
        looked up in every cluster and must match exactly one."""
        if typed.cluster is not None:
            session = self.session(typed.cluster)
            ns = typed.namespace or namespace or session.backend.default_namespace
            return Target(typed.cluster, ns, typed.name)
        if not self.several:
            cluster, session = next(iter(self.sessions.items()))
            ns = typed.namespace or namespace or session.backend.default_namespace
            return Target(cluster, ns, typed.name)
        if self.unavailable:
            away = ", ".join(f"{n} ({why})" for n, why in self.unavailable.items())
            raise BackendUnavailable(
                f"{kind} {str(typed)!r}: cannot tell which cluster while {away} cannot be "
                "read; name it as CLUSTER/NAMESPACE/NAME"
            )
        wanted = typed.namespace or namespace  # None: any namespace the session reads
        found = sorted(
            Target(cluster, row.namespace, row.name)
            for cluster, session in self.sessions.items()
            for row in _rows(session, kind)
            if row.name == typed.name and (wanted is None or row.namespace == wanted)
        )
        if len(found) == 1:
            return found[0]
        if found:
            raise AmbiguousTarget(
                f"{kind} {str(typed)!r} is in {len(found)} places "
                f"({', '.join(map(str, found))}): name one as CLUSTER/NAMESPACE/NAME"
            )
        where = ", ".join(
            f"{c}: {','.join(s.backend.namespaces) or 'all namespaces'}"
            for c, s in self.sessions.items()
        )
        raise TargetNotFound(f"{kind} {str(typed)!r} not found in any cluster ({where})")

    def resolve_all(
        self, typed: Sequence[TargetName], namespace: str | None = None
    ) -> list[Target]:
        return [self.resolve(t, namespace) for t in typed]

    # ----- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        for session in self.sessions.values():
            session.close()

    def __enter__(self) -> ClusterSessions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rows(session: Session, kind: Kind) -> Sequence[ModelDeployment | TrainingJob]:
    backend = session.backend
    return backend.jobs() if kind == "job" else backend.deployments()


def open_sessions(profile: Profile, request: SessionRequest) -> ClusterSessions:
    """Every cluster of the profile (or the one ``--cluster`` names; ``--context a,b``: one per
    context), opened side by side. Raises ``BackendUnavailable`` only when none can be opened."""
    profile, request = widened(profile, request)
    if request.cluster is not None or len(profile.clusters) <= 1:
        session = open_session(profile, request)
        return ClusterSessions(profile, {session.cluster: session})
    if request.context is not None:
        raise ProfileError(
            f"profile {profile.name!r} names {len(profile.clusters)} clusters, each with its "
            "own context: give --context with --cluster NAME"
        )
    names = [c.name for c in profile.clusters]
    opened: dict[str, Session] = {}
    unavailable: dict[str, str] = {}
    with ThreadPoolExecutor(len(names), thread_name_prefix="open-cluster") as pool:
        futures = {
            name: pool.submit(open_session, profile, dataclasses.replace(request, cluster=name))
            for name in names
        }
        errors: list[BaseException] = []
        for name, future in futures.items():
            try:
                opened[name] = future.result()
            except (BackendUnavailable, BackendError) as exc:
                unavailable[name] = printable(exc)
            except BaseException as exc:  # the opened ones are closed, then it is raised
                errors.append(exc)
    if errors or not opened:
        for session in opened.values():
            session.close()
        if errors:
            raise errors[0]
        reasons = "; ".join(f"{n}: {why}" for n, why in unavailable.items())
        raise BackendUnavailable(
            f"no cluster of profile {profile.name!r} could be opened: {reasons}"
        )
    return ClusterSessions(profile, opened, unavailable)
