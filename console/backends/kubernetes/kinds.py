"""The kinds the fleet cache watches and the client calls that list and watch them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    DEPLOYMENTS = "deployments"
    REPLICASETS = "replicasets"
    PODS = "pods"
    JOBS = "jobs"
    EVENTS = "events"


ALL_KINDS: tuple[Kind, ...] = tuple(Kind)

# The generated API class and the noun in its method names (list_namespaced_<noun>,
# list_<noun>_for_all_namespaces). Core v1 Events: what `kubectl describe` shows.
_APIS: dict[Kind, tuple[str, str]] = {
    Kind.DEPLOYMENTS: ("AppsV1Api", "deployment"),
    Kind.REPLICASETS: ("AppsV1Api", "replica_set"),
    Kind.PODS: ("CoreV1Api", "pod"),
    Kind.JOBS: ("BatchV1Api", "job"),
    Kind.EVENTS: ("CoreV1Api", "event"),
}

ListCall = Callable[..., Any]


def list_call(api_client: Any, kind: Kind, namespace: str | None) -> ListCall:
    """The list function of ``kind`` in ``namespace`` (all namespaces when None).

    Called with ``watch=True`` the same function opens the watch.
    """
    from kubernetes import client

    api_class, noun = _APIS[kind]
    api = getattr(client, api_class)(api_client)
    if namespace is None:
        return getattr(api, f"list_{noun}_for_all_namespaces")  # type: ignore[no-any-return]
    return functools.partial(getattr(api, f"list_namespaced_{noun}"), namespace)
