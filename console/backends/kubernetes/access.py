"""What the user may do: SelfSubjectAccessReview per verb, resource and namespace, cached.

k9s hides the actions a user may not take and re-checks every few minutes; so do we. A refusal
the server gives anyway (RBAC changed meanwhile) is shown plainly by the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CACHE_SECONDS = 300.0
ERROR_RETRY_SECONDS = 10.0

# The API group of each resource fleetdeck acts on.
GROUPS = {
    "deployments": "apps",
    "deployments/scale": "apps",
    "replicasets": "apps",
    "jobs": "batch",
    "pods": "",
    "pods/log": "",
    "services": "",
    "events": "",
    "ingresses": "networking.k8s.io",
    "httproutes": "gateway.networking.k8s.io",
    "horizontalpodautoscalers": "autoscaling",
    "scaledobjects": "keda.sh",
}


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    checked_at: float


class AccessReviewer:
    """Answers ``can(verb, resource, namespace)`` from a cache of the API server's reviews."""

    def __init__(
        self,
        api_client: Any,
        *,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from kubernetes import client

        self._api = client.AuthorizationV1Api(api_client)
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str, str], Decision] = {}
        self._lock = threading.Lock()

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return self.review(verb, resource, namespace).allowed

    def review(self, verb: str, resource: str, namespace: str | None = None) -> Decision:
        key = (verb, resource, namespace or "")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached.checked_at < self._ttl:
            return cached
        decision = self._ask(verb, resource, namespace, now)
        with self._lock:
            self._cache[key] = decision
        return decision

    def _ask(self, verb: str, resource: str, namespace: str | None, now: float) -> Decision:
        from kubernetes import client

        name, _, subresource = resource.partition("/")
        attributes = client.V1ResourceAttributes(
            verb=verb,
            group=GROUPS.get(resource, GROUPS.get(name, "")),
            resource=name,
            subresource=subresource or None,
            namespace=namespace,
        )
        review = client.V1SelfSubjectAccessReview(
            spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
        )
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            answer: Any = self._api.create_self_subject_access_review(review)
        except (ApiException, HTTPError) as exc:
            # Unknown means not offered; ask again soon rather than in five minutes.
            return Decision(False, f"cannot check: {exc}", now - self._ttl + ERROR_RETRY_SECONDS)
        status = answer.status
        reason = status.reason or status.evaluation_error or ""
        return Decision(bool(status.allowed), reason, now)

    def forget(self) -> None:
        """Drop every cached answer (after a context switch, say)."""
        with self._lock:
            self._cache.clear()


def reviewed_username(api_client: Any, timeout: float = 5.0) -> str | None:
    """Who the API server says this client is (what ``kubectl auth whoami`` shows), from a
    SelfSubjectReview; None when it cannot say (a server older than 1.28, or no answer).

    The kubeconfig's user entry is only a local name: ``kwok-viewer`` may authenticate as
    ``viewer``, and a token or certificate says who acts, not the file."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    review = client.V1SelfSubjectReview(
        api_version="authentication.k8s.io/v1", kind="SelfSubjectReview"
    )
    try:
        answer: Any = client.AuthenticationV1Api(api_client).create_self_subject_review(
            review, _request_timeout=(timeout, timeout)
        )
    except (ApiException, HTTPError):
        return None
    user = answer.status.user_info if answer.status is not None else None
    return str(user.username) if user is not None and user.username else None
