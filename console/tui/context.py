"""What every deck screen needs to know about the session: backend, profile, who and where."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from textual.screen import Screen

from console.backends.base import Backend
from console.batch.runner import Action, AuditContext
from console.core.guard import Guard, Mutation
from console.core.session import Session, session_on
from console.profile import Profile
from console.tui.permissions import Permissions, read_only_permissions
from console.views.fleet_data import Clock, MetricsSource, utc_now

PaletteCommand = tuple[str, str, Callable[[], Any]]  # title, help, what it does


@runtime_checkable
class PaletteScreen(Protocol):
    """A screen with entries of its own in the command palette."""

    def palette_commands(self) -> list[PaletteCommand]: ...


@runtime_checkable
class KnowsReadOnly(Protocol):
    """A backend opened read-only says so (both backends do; a test's stand-in may not)."""

    read_only: bool


@runtime_checkable
class DeckHost(Protocol):
    """An app that holds a deck session (the deck does; a host of one screen in a test may not)."""

    deck: DeckContext


@runtime_checkable
class ShowsBreaches(Protocol):
    """An app that watches the SLOs (the deck): its banner text, "" while nothing breaches."""

    @property
    def breach_text(self) -> str: ...


def breach_of(app: object) -> str:
    """The banner of the app a widget runs in ("" outside a deck)."""
    return app.breach_text if isinstance(app, ShowsBreaches) else ""


def deck_of(app: object) -> DeckContext | None:
    """The session of the app a screen runs in, if it holds one."""
    return app.deck if isinstance(app, DeckHost) else None


class SessionScreen(Screen[None]):
    """A screen that runs in the deck or on its own (a test's host, a demo): its session is the
    deck's when there is one, else one made of the backend it was given."""

    def __init__(self, backend: Any, profile: Profile, deck: DeckContext | None = None) -> None:
        super().__init__()
        self.backend, self.profile = backend, profile
        self._deck = deck

    @property
    def deck(self) -> DeckContext:
        if self._deck is None:
            backend = self.backend
            read_only = isinstance(backend, KnowsReadOnly) and backend.read_only
            self._deck = deck_of(self.app) or DeckContext(
                backend, self.profile, read_only=read_only
            )
        return self._deck

    @property
    def namespace(self) -> str:
        return self.deck.default_namespace


@runtime_checkable
class ActionScreen(Protocol):
    """A screen that acts on deployments: help lists the actions it does not offer, and why."""

    def why_not(self, action: Action) -> str: ...


@dataclass
class DeckContext:
    backend: Backend
    profile: Profile
    read_only: bool = False
    context: str | None = None  # the kube context (None: the profile's, or the local runtime)
    user: str = ""
    metrics: MetricsSource | None = None
    clock: Clock = utc_now
    audit_path: Path | None = None  # None: the default audit log
    live: bool = True  # False (snapshots): no subscription, no timers
    permissions: Permissions = field(default_factory=Permissions)
    cluster: str = ""  # its name in a deck over several clusters ("" in a one-cluster deck)

    def __post_init__(self) -> None:
        self.read_only = self.read_only or self.profile.read_only
        if self.read_only:
            self.permissions = read_only_permissions(self.profile.name)

    @property
    def namespaces(self) -> tuple[str, ...]:
        """The namespaces shown; () means all of them."""
        return tuple(self.backend.namespaces)

    @property
    def context_color(self) -> str:
        """The profile's colour for this context ("" when it sets none)."""
        return self.profile.deck.context_colors.get(self.context or "", "")

    @property
    def default_namespace(self) -> str:
        """Where a new job or deployment goes when none is named."""
        return self.backend.default_namespace or "default"

    @property
    def session(self) -> Session:
        """The core session over this deck's backend: its guard and audit context are the
        ones the CLI's session has (written once, in console/core/session.py)."""
        return session_on(
            self.profile,
            self.backend,
            user=self.user,
            read_only=self.read_only,
            context=self.context,
            audit_path=self.audit_path,
        )

    @property
    def guard(self) -> Guard:
        return self.session.guard

    def why_not(self, action: Mutation, namespace: str) -> str:
        """Why ``action`` in ``namespace`` is not offered ("" when it is): read-only first,
        then RBAC (asks the API server: call from a worker)."""
        return self.guard.why_not(action, [namespace])

    @property
    def audit(self) -> AuditContext:
        return self.session.audit


@dataclass
class ClusterDecks:
    """Every cluster the deck shows: one :class:`DeckContext` per open cluster (in the profile's
    order) and the clusters that could not be opened, with why. A one-cluster deck has one,
    under "" (its rows name no cluster); every screen but the Fleet table works on one of them:
    the one the row it was opened from came from."""

    decks: dict[str, DeckContext]
    unavailable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def single(cls, deck: DeckContext) -> ClusterDecks:
        return cls({"": deck})

    @property
    def several(self) -> bool:
        return len(self.decks) + len(self.unavailable) > 1

    @property
    def home(self) -> DeckContext:
        """The first cluster's: what a screen opened without a row works on."""
        return next(iter(self.decks.values()))

    def of(self, cluster: str) -> DeckContext:
        """The deck of the cluster a row names ("": a one-cluster deck's only one)."""
        if cluster in self.decks:
            return self.decks[cluster]
        if not cluster and len(self.decks) == 1:
            return self.home
        if cluster in self.unavailable:
            raise LookupError(f"cluster {cluster} could not be opened: {self.unavailable[cluster]}")
        raise LookupError(f"the deck has no cluster {cluster!r} ({', '.join(self.decks)})")

    def names(self) -> list[str]:
        return [*self.decks, *self.unavailable]
