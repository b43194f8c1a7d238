"""Which actions the deck offers, and why the others are not offered.

Read-only (the profile or ``--readonly``) removes every mutation; RBAC removes the ones the
user's role forbids in a namespace. Both are :mod:`console.core.guard`'s, with its texts: the
same checks the CLI makes before it sends anything. Reviews go to the API server, so
:func:`check_permissions` runs in a worker; the screens only look answers up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from console.batch.runner import ACTIONS, Action
from console.core import guard

ACTION_LABELS: Mapping[Action, str] = {  # the footer's word for each
    "rollout": "Rollout",
    "rollback": "Rollback",
    "restart": "Restart",
    "scale": "Scale",
    "pause": "Pause",
    "resume": "Resume",
    "delete": "Delete",
}
ACTION_TITLES: Mapping[Action, str] = {
    "rollout": "Roll out to a version",
    "rollback": "Roll back",
    "restart": "Restart",
    "scale": "Scale",
    "pause": "Pause rollouts",
    "resume": "Resume rollouts",
    "delete": "Delete",
}


@dataclass(frozen=True)
class Permissions:
    """Answers for the namespaces checked so far; an unchecked namespace is offered (the
    server's refusal is then shown plainly)."""

    read_only_reason: str = ""
    denied: Mapping[tuple[Action, str], str] = field(default_factory=dict)
    checked: frozenset[str] = frozenset()

    def why_not(self, action: Action, namespaces: Iterable[str]) -> str:
        """Why ``action`` is not offered on targets in ``namespaces``; "" when it is."""
        if self.read_only_reason:
            return self.read_only_reason
        reasons = [self.denied[(action, ns)] for ns in namespaces if (action, ns) in self.denied]
        return reasons[0] if reasons else ""

    def summary(self, namespaces: Iterable[str]) -> str:
        """For the status bar: which actions RBAC removes, e.g. "RBAC: no rollout, delete"."""
        if self.read_only_reason:
            return ""
        chosen = list(namespaces)
        denied = [a for a in ACTIONS if self.why_not(a, chosen)]
        return f"RBAC: no {', '.join(denied)}" if denied else ""

    def merged(self, other: Permissions) -> Permissions:
        return Permissions(
            self.read_only_reason or other.read_only_reason,
            {**self.denied, **other.denied},
            self.checked | other.checked,
        )


def read_only_permissions(profile: str) -> Permissions:
    return Permissions(read_only_reason=guard.read_only_refusal(profile).text)


def check_permissions(
    backend: guard.AccessReview, user: str, namespaces: Iterable[str]
) -> Permissions:
    """Ask the backend about every action in every namespace (blocking: call from a worker)."""
    denied: dict[tuple[Action, str], str] = {}
    chosen = frozenset(namespaces)
    for namespace in sorted(chosen):
        for action in ACTIONS:
            refused = guard.rbac_refusals(
                backend, action, [namespace], user=user, offer_when_unknown=True
            )
            if refused:
                denied[(action, namespace)] = refused[0].text
    return Permissions(denied=denied, checked=chosen)
