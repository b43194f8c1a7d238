"""Read-only and RBAC, written once: what each mutation needs, and the one refusal every
front-end (the CLI, the deck, the batch engine) and every backend shows.

A read-only profile (or ``--readonly``) refuses every mutation; RBAC refuses an action when
the user may not do one of the things the action needs (:data:`NEEDS`) in a namespace of its
targets. Both are asked before anything is sent. The guard depends on nothing else in the
console, so the backends can use the same refusal for their last-line check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, TypeGuard, get_args

Mutation = Literal[
    "deploy",
    "rollout",
    "rollback",
    "restart",
    "pause",
    "resume",
    "scale",
    "delete",
    "train",
    "score",
    "cancel",
    "autoscale",
]
MUTATIONS: frozenset[Mutation] = frozenset(get_args(Mutation))


@dataclass(frozen=True)
class Need:
    """One thing an action needs RBAC to allow, asked in every namespace of its targets."""

    verb: str
    resource: str


# What each mutation needs. Autoscale creates the autoscaler or patches the one there: an
# HorizontalPodAutoscaler here, a KEDA ScaledObject when the profile's engine is "keda"
# (:data:`AUTOSCALE_NEEDS`, :func:`needs`).
NEEDS: Mapping[Mutation, tuple[Need, ...]] = {
    "deploy": (Need("create", "deployments"),),
    "rollout": (Need("patch", "deployments"),),
    "rollback": (Need("patch", "deployments"),),
    "restart": (Need("patch", "deployments"),),
    "pause": (Need("patch", "deployments"),),
    "resume": (Need("patch", "deployments"),),
    "scale": (Need("patch", "deployments"),),
    "delete": (Need("delete", "deployments"),),
    "train": (Need("create", "jobs"),),
    "score": (Need("create", "jobs"),),
    "cancel": (Need("delete", "jobs"),),
    "autoscale": (
        Need("create", "horizontalpodautoscalers"),
        Need("patch", "horizontalpodautoscalers"),
    ),
}


AUTOSCALE_NEEDS: Mapping[str, tuple[Need, ...]] = {
    "hpa": NEEDS["autoscale"],
    "keda": (Need("create", "scaledobjects"), Need("patch", "scaledobjects")),
}


def needs(action: Mutation, engine: str = "hpa") -> tuple[Need, ...]:
    """What ``action`` needs, autoscale through the profile's autoscaling ``engine``."""
    if action == "autoscale":
        return AUTOSCALE_NEEDS.get(engine, NEEDS[action])
    return NEEDS[action]


def is_mutation(action: str) -> TypeGuard[Mutation]:
    return action in MUTATIONS


class AccessReview(Protocol):
    """What the guard asks of a backend: may the user do this (the backend caches answers)."""

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool: ...


class Refusal(Exception):
    """A mutation refused before anything was sent; ``str()`` is the text to show, which says
    what to do about it."""

    def __init__(self, text: str, *, read_only: bool) -> None:
        super().__init__(text)
        self.read_only = read_only  # False: RBAC refused it

    @property
    def text(self) -> str:
        return str(self)


def read_only_refusal(profile: str) -> Refusal:
    which = f"profile {profile!r}" if profile else "this profile"
    return Refusal(
        f"read-only: {which} (or --readonly) allows no changes; nothing was sent "
        "(use a profile that is not read-only, without --readonly)",
        read_only=True,
    )


def forbidden_refusal(user: str, need: Need, namespace: str) -> Refusal:
    who = f"user {user!r}" if user else "you"
    return Refusal(
        f"forbidden: {who} may not {need.verb} {need.resource} in namespace {namespace}; "
        "nothing was sent (ask for a role that allows it)",
        read_only=False,
    )


def rbac_refusals(
    reviewer: AccessReview,
    action: Mutation,
    namespaces: Iterable[str],
    *,
    user: str,
    offer_when_unknown: bool = False,
    engine: str = "hpa",
) -> list[Refusal]:
    """What RBAC refuses of ``action`` in ``namespaces``, one refusal per namespace at most.
    ``offer_when_unknown``: a review that cannot be asked now counts as allowed (the deck
    offers the action; the server then decides and its refusal is shown). ``engine``: the
    profile's autoscaling engine, which says what autoscale makes."""
    found: list[Refusal] = []
    for namespace in sorted(set(namespaces)):
        for need in needs(action, engine):
            if not _allowed(reviewer, need, namespace, offer_when_unknown):
                found.append(forbidden_refusal(user, need, namespace))
                break
    return found


def _allowed(reviewer: AccessReview, need: Need, namespace: str, offer_when_unknown: bool) -> bool:
    if not offer_when_unknown:
        return bool(reviewer.can(need.verb, need.resource, namespace))
    try:
        return bool(reviewer.can(need.verb, need.resource, namespace))
    except Exception:  # cannot ask now (the API server is away): the server decides later
        return True


@dataclass(frozen=True)
class Guard:
    """Who asks, and how: the reviewer (the backend), whether the profile (or ``--readonly``)
    is read-only, the profile's name and the user, for the refusals' texts; and the profile's
    autoscaling engine, which says what autoscale makes (an HPA, a KEDA ScaledObject)."""

    reviewer: AccessReview
    read_only: bool
    profile: str
    user: str
    autoscale_engine: str = "hpa"

    def refusals(
        self, action: Mutation, namespaces: Iterable[str], *, offer_when_unknown: bool = False
    ) -> list[Refusal]:
        """Every refusal of ``action`` on targets in ``namespaces``: read-only alone when the
        profile is read-only (no review is asked), else RBAC's; empty when it may go ahead."""
        if self.read_only:
            return [read_only_refusal(self.profile)]
        return rbac_refusals(
            self.reviewer,
            action,
            namespaces,
            user=self.user,
            offer_when_unknown=offer_when_unknown,
            engine=self.autoscale_engine,
        )

    def check(self, action: Mutation, namespaces: Iterable[str]) -> None:
        """Raise the first :class:`Refusal` of ``action``; return when it may be sent."""
        found = self.refusals(action, namespaces)
        if found:
            raise found[0]

    def why_not(self, action: Mutation, namespaces: Iterable[str]) -> str:
        """For the deck: why ``action`` is not offered ("" when it is); a review that cannot
        be asked now offers it."""
        found = self.refusals(action, namespaces, offer_when_unknown=True)
        return found[0].text if found else ""


def check_read_only(*, read_only: bool, profile: str) -> None:
    """Raise the read-only refusal: for a change decided before a backend is open."""
    if read_only:
        raise read_only_refusal(profile)
