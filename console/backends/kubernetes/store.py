"""Objects per kind, keyed by (namespace, name), kept as the API server's JSON (plain dicts).

Plain dicts, not the client's models: deserializing into models costs far more than the JSON
parse itself (measured for the fleet cache: see the module docstring of ``cache``), and the
console only reads a few fields of each object. Readers get the stored dicts themselves, not
copies: treat them as read-only.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

from console.backends.kubernetes.kinds import Kind

Key = tuple[str, str]  # (namespace, name)
Obj = dict[str, Any]


def key_of(obj: Obj) -> Key:
    metadata = obj["metadata"]
    return (str(metadata.get("namespace", "")), str(metadata["name"]))


def slim(obj: Obj) -> Obj:
    """Drop what no view reads and that costs memory: managedFields is often half an object."""
    obj.get("metadata", {}).pop("managedFields", None)
    return obj


def resource_version(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))


class Store:
    """Thread-safe: watchers write, any thread reads. One lock: every operation is short."""

    def __init__(self, kinds: Sequence[Kind]) -> None:
        self._lock = threading.Lock()
        # kind -> namespace -> name -> object: a namespace's objects are listed without a scan.
        self._data: dict[Kind, dict[str, dict[str, Obj]]] = {kind: {} for kind in kinds}

    def replace(self, kind: Kind, namespace: str | None, items: Iterable[Obj]) -> set[Key]:
        """Replace the objects of ``namespace`` (all when None) at once; return what changed."""
        fresh: dict[str, dict[str, Obj]] = {}
        for obj in items:
            ns, name = key_of(slim(obj))
            fresh.setdefault(ns, {})[name] = obj
        with self._lock:
            current = self._data[kind]
            if namespace is None:
                old = current
                self._data[kind] = fresh
            else:
                old = {namespace: current.get(namespace, {})}
                if fresh.get(namespace):
                    current[namespace] = fresh[namespace]
                else:
                    current.pop(namespace, None)
        return _diff(old, fresh)

    def apply(self, kind: Kind, event_type: str, obj: Obj) -> Key:
        """Apply one watch event (ADDED, MODIFIED or DELETED)."""
        key = key_of(slim(obj))
        namespace, name = key
        with self._lock:
            objects = self._data[kind]
            if event_type == "DELETED":
                names = objects.get(namespace)
                if names is not None:
                    names.pop(name, None)
                    if not names:
                        del objects[namespace]
            else:
                objects.setdefault(namespace, {})[name] = obj
        return key

    def list(self, kind: Kind, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            objects = self._data.get(kind, {})  # a kind not watched is empty, not an error
            if namespace is not None:
                return list(objects.get(namespace, {}).values())
            return [obj for names in objects.values() for obj in names.values()]

    def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._data.get(kind, {}).get(namespace, {}).get(name)

    def counts(self) -> dict[Kind, int]:
        with self._lock:
            return {
                kind: sum(len(names) for names in objects.values())
                for kind, objects in self._data.items()
            }


def _diff(old: dict[str, dict[str, Obj]], new: dict[str, dict[str, Obj]]) -> set[Key]:
    """Keys added, removed, or whose resourceVersion differs."""
    changed: set[Key] = set()
    for namespace in old.keys() | new.keys():
        before = old.get(namespace, {})
        after = new.get(namespace, {})
        for name in before.keys() | after.keys():
            a, b = before.get(name), after.get(name)
            if a is None or b is None or resource_version(a) != resource_version(b):
                changed.add((namespace, name))
    return changed
