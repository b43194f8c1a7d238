"""The fleet cache's pure parts: backoff, the store's diffs, the connection state, coalescing.

The cache itself is tested against the real cluster in tests/integration/console.
"""

from __future__ import annotations

import threading
from typing import Any

from console.backends.kubernetes.connection import Backoff, ConnectionState, ConnectionTracker
from console.backends.kubernetes.kinds import Kind
from console.backends.kubernetes.notify import Changes, Notifier
from console.backends.kubernetes.store import Store
from console.backends.kubernetes.watcher import reason_of
from tests.infra.k8s_fixtures import poll_until


def obj(namespace: str, name: str, version: str = "1") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": namespace,
            "name": name,
            "resourceVersion": version,
            "managedFields": [{"manager": "kubectl"}],
        }
    }


def status(tracker: ConnectionTracker) -> str:
    return tracker.state.status


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial=1.0, cap=8.0, rng=lambda: 1.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = Backoff(initial=1.0, cap=8.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]  # never immediate
    backoff.reset()
    assert backoff.next() == 1.0


def test_a_relist_replaces_a_namespace_and_reports_only_what_changed() -> None:
    store = Store([Kind.DEPLOYMENTS])
    store.replace(Kind.DEPLOYMENTS, "a", [obj("a", "x"), obj("a", "y")])
    store.replace(Kind.DEPLOYMENTS, "b", [obj("b", "x")])

    changed = store.replace(
        Kind.DEPLOYMENTS, "a", [obj("a", "x"), obj("a", "z"), obj("a", "y", "2")]
    )

    assert changed == {("a", "y"), ("a", "z")}
    assert {o["metadata"]["name"] for o in store.list(Kind.DEPLOYMENTS, "a")} == {"x", "y", "z"}
    assert store.get(Kind.DEPLOYMENTS, "b", "x") is not None  # another scope is untouched
    assert store.replace(Kind.DEPLOYMENTS, "a", []) == {("a", "x"), ("a", "y"), ("a", "z")}
    assert store.counts() == {Kind.DEPLOYMENTS: 1}


def test_an_all_namespaces_relist_replaces_the_whole_kind() -> None:
    store = Store([Kind.PODS])
    store.replace(Kind.PODS, None, [obj("a", "p"), obj("b", "q")])
    assert store.replace(Kind.PODS, None, [obj("b", "q")]) == {("a", "p")}
    assert [o["metadata"]["name"] for o in store.list(Kind.PODS)] == ["q"]
    assert store.list(Kind.PODS, "a") == []


def test_watch_events_add_modify_and_delete_and_drop_managed_fields() -> None:
    store = Store([Kind.JOBS])
    store.apply(Kind.JOBS, "ADDED", obj("a", "j"))
    store.apply(Kind.JOBS, "MODIFIED", obj("a", "j", "2"))
    found = store.get(Kind.JOBS, "a", "j")
    assert found is not None
    assert found["metadata"]["resourceVersion"] == "2"
    assert "managedFields" not in found["metadata"]
    store.apply(Kind.JOBS, "DELETED", obj("a", "j", "3"))
    store.apply(Kind.JOBS, "DELETED", obj("a", "never-seen"))
    assert store.list(Kind.JOBS) == []
    assert store.list(Kind.EVENTS) == []  # a kind not watched is empty


def test_connection_is_live_once_every_scope_listed_and_reconnecting_while_one_fails() -> None:
    seen: list[ConnectionState] = []
    tracker = ConnectionTracker(2, seen.append)
    assert status(tracker) == "connecting"
    tracker.recovered("pods@a")
    assert status(tracker) == "connecting"
    tracker.recovered("jobs@a")
    assert tracker.state.live
    tracker.failed("pods@a", "connection refused", "MaxRetryError: refused")
    first = tracker.state
    tracker.failed("jobs@a", "connection refused", "MaxRetryError: refused again")
    assert status(tracker) == "reconnecting"
    assert tracker.state.since == first.since  # since the first failure
    assert tracker.state.reason == "connection refused"
    tracker.recovered("pods@a")
    assert status(tracker) == "reconnecting"
    tracker.recovered("jobs@a")
    assert tracker.state.live
    assert tracker.state.last_error == "MaxRetryError: refused again"
    tracker.stopped()
    assert [s.status for s in seen] == ["live", "reconnecting", "reconnecting", "live", "stopped"]


def test_the_probe_only_adds_failures_so_live_never_waits_for_its_first_answer() -> None:
    tracker = ConnectionTracker(1, lambda state: None)
    tracker.recovered("pods@a")
    assert tracker.state.live  # the probe has not answered yet
    tracker.failed("api-server", "the API server does not answer", "ReadTimeoutError")
    assert status(tracker) == "reconnecting"
    assert tracker.state.reason == "the API server does not answer"
    tracker.cleared("api-server")
    assert tracker.state.live
    tracker.cleared("api-server")  # answering again and again changes nothing
    assert tracker.state.live


def test_notifier_coalesces_changes_into_batches_from_one_thread() -> None:
    batches: list[Changes] = []
    threads: set[str] = set()
    notifier = Notifier(interval=0.5)

    def record(changes: Changes) -> None:
        threads.add(threading.current_thread().name)
        batches.append(changes)

    notifier.subscribe(record)
    notifier.start()
    try:
        notifier.changed(Kind.PODS, [("a", "p")])
        poll_until("the first batch", lambda: bool(batches))
        for i in range(100):  # within the interval: one batch
            notifier.changed(Kind.PODS, [("a", f"p{i}")])
            notifier.changed(Kind.EVENTS, [("a", f"e{i}")])

        def delivered() -> list[object]:
            return [key for b in list(batches) for key in b.keys.get(Kind.PODS, ())]

        # However slow the machine, every change arrives, each once, in few batches.
        poll_until("all 101 pod changes", lambda: len(delivered()) >= 101)
    finally:
        notifier.stop(timeout=5)
    keys = [key for b in batches for key in b.keys.get(Kind.PODS, ())]
    assert len(keys) == len(set(keys)) == 101
    assert len(batches) < 101
    assert threads == {"fleet-cache-notifier"}


def test_reasons_are_short_enough_for_a_status_line() -> None:
    from urllib3.exceptions import MaxRetryError, NewConnectionError

    message = "Failed to establish a new connection: [Errno 111] Connection refused"
    cause = NewConnectionError(None, message)  # type: ignore[arg-type]
    refused = MaxRetryError(None, "/apis/apps/v1/deployments", cause)  # type: ignore[arg-type]
    assert reason_of(refused) == "connection refused"
