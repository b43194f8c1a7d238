"""Each Deployment's revisions, converted again only when its objects changed.

The cache replaces an object's JSON when a watch event changes it and keeps the same dict
while nothing does; so a Deployment whose dict and ReplicaSets' dicts are the very ones of
the last call has the same revisions, and the same list is answered. At 5,000 Deployments ×
10 ReplicaSets, converting all of them took 1.6 s a call; the Changes screen asks at each
rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from console.model import RevisionInfo

Obj = dict[str, Any]
Convert = Callable[[Obj, Sequence[Obj]], list[RevisionInfo]]


class RevisionsMemo:
    def __init__(self, convert: Convert) -> None:
        self._convert = convert
        # By Deployment uid: its dict, its ReplicaSets' dicts (kept alive, so compared by
        # identity safely) and the revisions made of them.
        self._kept: dict[str, tuple[Obj, tuple[Obj, ...], list[RevisionInfo]]] = {}
        self._lock = threading.Lock()

    def revisions(
        self,
        deployments: Sequence[Obj],
        owned: Callable[[Obj], Sequence[Obj]],
        uid: Callable[[Obj], str],
    ) -> list[tuple[Obj, list[RevisionInfo]]]:
        """Each of ``deployments`` with its revisions (``owned``: its ReplicaSets)."""
        with self._lock:  # two readers at once would each convert everything
            kept, made = self._kept, {}
            found = []
            for deployment in deployments:
                key = uid(deployment)
                sets = tuple(owned(deployment))
                old = kept.get(key)
                if old is not None and old[0] is deployment and _same(old[1], sets):
                    revisions = old[2]
                else:
                    revisions = self._convert(deployment, sets)
                made[key] = (deployment, sets, revisions)
                found.append((deployment, revisions))
            self._kept = made
            return found


def _same(kept: tuple[Obj, ...], now: tuple[Obj, ...]) -> bool:
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))
