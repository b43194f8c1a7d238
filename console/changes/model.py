"""What changed in the fleet: one row of the Changes screen and of ``fleetdeck changes``.

A change is made from the deployments' revision histories, the audit log, the batch journals,
the model store and the warning events (:mod:`console.changes.timeline` joins them). Each says
when, who, what, which deployments and from what to what, and for each deployment how to put
it back as it was (:class:`Affected`'s ``undo``) or why that cannot be done.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

from console.batch.runner import ActionSpec

Key = tuple[str, str]  # (namespace, name)


class Kind(enum.StrEnum):
    DEPLOY = "deploy"
    ROLLOUT = "rollout"
    ROLLBACK = "rollback"
    RESTART = "restart"
    EDIT = "edit"  # a new revision made by another client (kubectl set image, apply, edit)
    SCALE = "scale"
    PAUSE = "pause"
    RESUME = "resume"
    DELETE = "delete"
    AUTOSCALE = "autoscale"
    BATCH = "batch"
    PUBLISH = "publish"  # a model version published to the store
    SCORE = "score"  # a batch scoring job started on a model version
    TRAIN = "train"
    CANCEL = "cancel"
    UNDO = "undo"  # a change that undid another (its audit lines name it)
    WARNING = "warning"


# Changes whose effect on the serving numbers is measured (before and after).
SERVING_KINDS = frozenset(
    {
        Kind.DEPLOY,
        Kind.ROLLOUT,
        Kind.ROLLBACK,
        Kind.RESTART,
        Kind.EDIT,
        Kind.SCALE,
        Kind.PAUSE,
        Kind.RESUME,
        Kind.BATCH,
        Kind.UNDO,
    }
)


@dataclass(frozen=True)
class Affected:
    """One deployment a change touched, and how to put it back."""

    cluster: str  # the profile's cluster ("" for a profile of one cluster)
    namespace: str
    name: str
    before: str = ""  # "digits v2 (rev 4)", "3 replicas"; "" when not known
    after: str = ""
    undo: ActionSpec | None = None  # what puts it back as it was before the change
    # Undo only while the deployment is as the change left it (nothing changed it since).
    expect_revision: int | None = None
    expect_replicas: int | None = None
    expect_paused: bool | None = None
    why_not: str = ""  # why it cannot be undone, when ``undo`` is None

    @property
    def key(self) -> Key:
        return (self.namespace, self.name)

    @property
    def where(self) -> str:
        """``cluster/namespace/name``, or ``namespace/name`` on one cluster."""
        path = f"{self.namespace}/{self.name}"
        return f"{self.cluster}/{path}" if self.cluster else path


@dataclass(frozen=True)
class Change:
    id: str  # short and stable: the same change has the same id in every process
    time: datetime
    kind: Kind
    who: str  # "" when nothing says (a change made outside fleetdeck)
    via_fleetdeck: bool
    what: str  # one line: "rollout digits v3", "batch rollout to version 3: done"
    affected: tuple[Affected, ...] = ()
    cluster: str = ""  # where it happened ("" on one cluster, or for the store)
    approximate: bool = False  # the time is an estimate (a re-used ReplicaSet)
    batch: str = ""  # the batch it belongs to, or is
    undoes: str = ""  # the change this one undid
    why_not: str = ""  # why the change as a whole cannot be undone ("" when it can)
    # A batch still running or halted is undone by its abort; a finished one target by target.
    abortable: bool = False
    # The ids of the changes it is made of (one command over several deployments, a batch's
    # own revisions): ``undo`` finds it by any of them, as a one-deployment view names them.
    members: tuple[str, ...] = ()

    @property
    def serving(self) -> bool:
        return self.kind in SERVING_KINDS and bool(self.affected)

    @property
    def before(self) -> str:
        return _summary([a.before for a in self.affected])

    @property
    def after(self) -> str:
        return _summary([a.after for a in self.affected])

    @property
    def targets(self) -> str:
        """Which deployments: one by name, several as the first and a count."""
        if not self.affected:
            return ""
        first = self.affected[0].where
        more = len(self.affected) - 1
        return f"{first} +{more}" if more else first

    def undo_refusal(self) -> str:
        """Why this change cannot be undone as a whole; "" when it can (some targets may
        still be refused, each with its reason)."""
        if self.why_not:
            return self.why_not
        if self.kind is Kind.BATCH and self.abortable:
            return ""
        if not self.affected:
            return f"a {self.kind.value} changes no deployment: nothing to undo"
        if all(a.undo is None for a in self.affected):
            return self.affected[0].why_not or "nothing to undo"
        return ""


def change_id(*parts: object) -> str:
    """Seven hex digits, as git abbreviates: what a person types after ``fleetdeck undo``."""
    text = "\x1f".join(map(str, parts))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:7]


def _summary(values: list[str]) -> str:
    known = [v for v in values if v]
    if not known:
        return ""
    if len(set(known)) == 1:
        return known[0]
    return f"{known[0]} (and {len(set(known)) - 1} other)"
