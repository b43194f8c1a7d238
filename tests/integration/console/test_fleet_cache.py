"""The fleet cache against the real test cluster (KWOK nodes make the pods).

Waits are bounded polls (``poll_until``); nothing asserts on elapsed time. The tests that take
the API server away come last: they restart it for everyone using the cluster.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.backend import KubernetesBackend
from console.backends.kubernetes.cache import (
    ALL_KINDS,
    Changes,
    FleetCache,
    Kind,
    WatchSettings,
)
from console.backends.kubernetes.connection import Backoff
from console.backends.kubernetes.probe import NOT_ANSWERING
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.k8s_objects import apps, bare_pod, batch, core, deployment, job

StartCache = Callable[..., FleetCache]


# ----- helpers -----------------------------------------------------------------------------


def names(cache: FleetCache, kind: Kind, namespace: str) -> set[str]:
    return {obj["metadata"]["name"] for obj in cache.list(kind, namespace)}


def lookup(cache: FleetCache, kind: Kind, namespace: str, name: str) -> Callable[[], Any]:
    return lambda: cache.get(kind, namespace, name)


def labelled(cache: FleetCache, namespace: str, name: str, label: str) -> Callable[[], bool]:
    def check() -> bool:
        found = cache.get(Kind.DEPLOYMENTS, namespace, name)
        return found is not None and label in found["metadata"].get("labels", {})

    return check


def etcd_url(k8s: K8sCluster) -> str:
    """The test cluster's etcd client URL, from its command line (plain HTTP on loopback)."""
    pid = k8s.cluster.component_pid("etcd")
    assert pid is not None, "etcd is not running"
    args = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    flag = "--listen-client-urls="
    return next(a.removeprefix(flag) for a in args if a.startswith(flag)).split(",")[0]


def bump_etcd_revision(url: str) -> None:
    """Write a key outside the API server's prefix: etcd's revision moves past every version
    the API server has handed out, as other clients' writes would while it is away."""
    key, value = (base64.b64encode(v).decode() for v in (b"/fleetdeck-tests/bump", b"1"))
    body = json.dumps({"key": key, "value": value}).encode()
    request = urllib.request.Request(f"{url}/v3/kv/put", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def cache_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("fleet-cache-")]


class Recorder:
    """A subscriber remembering every batch and the thread that delivered it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[Changes] = []
        self.threads: set[str] = set()

    def __call__(self, changes: Changes) -> None:
        with self.lock:
            self.batches.append(changes)
            self.threads.add(threading.current_thread().name)

    def keys(self, kind: Kind) -> set[tuple[str, str]]:
        with self.lock:
            return {key for b in self.batches for key in b.keys.get(kind, ())}

    def statuses(self) -> list[str]:
        with self.lock:
            return [b.connection.status for b in self.batches if b.connection is not None]


@pytest.fixture
def start_cache(k8s_cluster: K8sCluster) -> Iterator[StartCache]:
    """Start caches for a test; stop them afterwards and check no thread is left behind."""
    started: list[FleetCache] = []

    def start(namespaces: list[str], **options: Any) -> FleetCache:
        cache = FleetCache(k8s_cluster.api_client(), namespaces, **options)
        started.append(cache)
        cache.start()
        assert cache.wait_synced(timeout=60), "the cache never finished its first list"
        return cache

    yield start
    for cache in started:
        cache.stop()
    poll_until("the cache threads to end", lambda: not cache_threads(), timeout=30)


# ----- contents ----------------------------------------------------------------------------


def test_deployments_pods_replicasets_and_events_appear_update_and_disappear(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns = k8s_namespace
    recorder = Recorder()
    cache = start_cache([ns])
    cache.subscribe(recorder)
    assert cache.connection.live

    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("iris", replicas=2))
    poll_until("the deployment", lambda: cache.get(Kind.DEPLOYMENTS, ns, "iris"))
    poll_until("its replicaset", lambda: bool(names(cache, Kind.REPLICASETS, ns)))

    def ready_pods() -> bool:
        pods = cache.list(Kind.PODS, ns)
        ready = [
            p
            for p in pods
            for c in p.get("status", {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] == "True"
        ]
        return len(ready) == 2

    poll_until("two ready pods (KWOK) in the cache", ready_pods)
    poll_until(
        "the scheduler's events",
        lambda: any(e.get("reason") == "Scheduled" for e in cache.list(Kind.EVENTS, ns)),
    )

    apps(k8s_cluster).patch_namespaced_deployment(
        "iris", ns, {"metadata": {"labels": {"fleetdeck.io/model-version": "7"}}}
    )
    poll_until(
        "the update",
        lambda: (
            (cache.get(Kind.DEPLOYMENTS, ns, "iris") or {})["metadata"]["labels"].get(
                "fleetdeck.io/model-version"
            )
            == "7"
        ),
    )

    # The stored objects are the JSON the server sent, without managedFields.
    stored = cache.list(Kind.REPLICASETS, ns)[0]
    assert stored["metadata"]["ownerReferences"][0]["name"] == "iris"
    assert "managedFields" not in stored["metadata"]
    listed = start_cache([ns], kinds=[Kind.REPLICASETS]).list(Kind.REPLICASETS, ns)[0]
    assert (listed["kind"], listed["apiVersion"]) == ("ReplicaSet", "apps/v1")

    apps(k8s_cluster).delete_namespaced_deployment("iris", ns)
    poll_until("the delete", lambda: cache.get(Kind.DEPLOYMENTS, ns, "iris") is None)
    poll_until("the pods to go", lambda: not cache.list(Kind.PODS, ns))

    # Subscribers heard about all of it, from the notifier thread only, never per event.
    poll_until(
        "the deployment key notified", lambda: (ns, "iris") in recorder.keys(Kind.DEPLOYMENTS)
    )
    assert {Kind.DEPLOYMENTS, Kind.REPLICASETS, Kind.PODS, Kind.EVENTS} <= {
        kind for b in recorder.batches for kind in b.kinds
    }
    assert recorder.threads == {"fleet-cache-notifier"}


def test_jobs_and_their_pods_appear_and_complete(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns = k8s_namespace
    cache = start_cache([ns], kinds=[Kind.JOBS, Kind.PODS])
    batch(k8s_cluster).create_namespaced_job(ns, job("train"))

    def succeeded() -> bool:
        found = cache.get(Kind.JOBS, ns, "train")
        return bool(found and found.get("status", {}).get("succeeded") == 1)

    poll_until("the job to complete in the cache", succeeded)
    pods = cache.list(Kind.PODS, ns)
    assert [p["metadata"]["labels"]["job-name"] for p in pods] == ["train"]
    assert pods[0]["status"]["phase"] == "Succeeded"
    assert cache.list(Kind.DEPLOYMENTS) == []  # not watched: an empty kind, never an error


def test_a_burst_of_changes_reaches_subscribers_in_a_few_coalesced_batches(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns = k8s_namespace
    recorder = Recorder()
    # A long interval makes the coalescing visible: 20 creates land in very few batches.
    cache = start_cache([ns], kinds=[Kind.DEPLOYMENTS], notify_interval=2.0)
    cache.subscribe(recorder)
    wanted = {(ns, f"m{i}") for i in range(20)}
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda key: apps(k8s_cluster).create_namespaced_deployment(
                    ns, deployment(key[1], replicas=0)
                ),
                wanted,
            )
        )

    poll_until("every key notified", lambda: wanted <= recorder.keys(Kind.DEPLOYMENTS))
    with recorder.lock:
        carrying = [b for b in recorder.batches if b.keys.get(Kind.DEPLOYMENTS)]
    assert len(carrying) < len(wanted)
    assert max(len(b.keys[Kind.DEPLOYMENTS]) for b in carrying) > 1


def test_unsubscribed_callbacks_are_not_called_again(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns = k8s_namespace
    gone, staying = Recorder(), Recorder()
    cache = start_cache([ns], kinds=[Kind.DEPLOYMENTS], notify_interval=0.05)
    unsubscribe = cache.subscribe(gone)
    cache.subscribe(staying)
    unsubscribe()
    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("a", replicas=0))
    poll_until("the staying subscriber", lambda: (ns, "a") in staying.keys(Kind.DEPLOYMENTS))
    assert gone.batches == []


# ----- scopes ------------------------------------------------------------------------------


def test_two_namespaces_are_watched_and_a_third_is_ignored(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    first = k8s_namespace
    second = k8s_cluster.create_namespace(f"{first}-b")
    ignored = k8s_cluster.create_namespace(f"{first}-c")
    try:
        cache = start_cache([first, second])
        for ns in (ignored, first, second):
            apps(k8s_cluster).create_namespaced_deployment(ns, deployment("iris", replicas=1))

        poll_until("both watched deployments", lambda: len(cache.list(Kind.DEPLOYMENTS)) == 2)
        poll_until("both watched namespaces' pods", lambda: len(cache.list(Kind.PODS)) == 2)
        # The ignored namespace's pod is up as well by now (it was created first).
        poll_until(
            "the ignored namespace's pod to exist",
            lambda: bool(k8s_cluster.kubectl("get", "pods", "-n", ignored, "-o", "name").strip()),
        )
        for kind in ALL_KINDS:
            assert {o["metadata"]["namespace"] for o in cache.list(kind)} <= {first, second}
            assert cache.list(kind, ignored) == []
        assert cache.get(Kind.DEPLOYMENTS, ignored, "iris") is None
        assert names(cache, Kind.DEPLOYMENTS, second) == {"iris"}
    finally:
        k8s_cluster.delete_namespace(second)
        k8s_cluster.delete_namespace(ignored)


def test_an_empty_namespace_list_watches_every_namespace(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    other = k8s_cluster.create_namespace(f"{k8s_namespace}-b")
    try:
        cache = start_cache([], kinds=[Kind.DEPLOYMENTS, Kind.EVENTS])
        for ns in (k8s_namespace, other):
            apps(k8s_cluster).create_namespaced_deployment(ns, deployment("iris", replicas=0))
        for ns in (k8s_namespace, other):
            poll_until(f"the deployment in {ns}", lookup(cache, Kind.DEPLOYMENTS, ns, "iris"))
        namespaces = {e["metadata"]["namespace"] for e in cache.list(Kind.EVENTS)}
        assert len(namespaces) > 1  # events of the whole cluster, not one namespace
    finally:
        k8s_cluster.delete_namespace(other)


# ----- scale -------------------------------------------------------------------------------


def test_two_thousand_deployments_are_listed_watched_and_updated(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns, count = k8s_namespace, 2000
    # One cache sees them arrive through its watch, the other lists them all at once.
    watching = start_cache([ns], kinds=[Kind.DEPLOYMENTS])
    api = apps(k8s_cluster)
    with ThreadPoolExecutor(32) as pool:
        list(
            pool.map(
                lambda i: api.create_namespaced_deployment(ns, deployment(f"m{i:04}", 0)),
                range(count),
            )
        )
    poll_until("all 2,000 through the watch", lambda: len(watching.list(Kind.DEPLOYMENTS)) == count)

    tracemalloc.start()
    began = time.perf_counter()
    listing = start_cache([ns], kinds=[Kind.DEPLOYMENTS])
    listed_in = time.perf_counter() - began
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(listing.list(Kind.DEPLOYMENTS)) == count
    print(f"\n2,000 deployments: listed and stored in {listed_in:.2f}s, {held / 2**20:.1f} MiB")

    api.patch_namespaced_deployment("m1234", ns, {"metadata": {"labels": {"touched": "yes"}}})
    for cache in (watching, listing):
        poll_until("the update", labelled(cache, ns, "m1234", "touched"))
        assert len(cache.list(Kind.DEPLOYMENTS, ns)) == count


# ----- the API server goes away (keep last: it restarts the API server) --------------------


def test_a_watch_that_can_no_longer_resume_relists_and_converges(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    """410 Gone for real: a restarted API server's watch cache starts at etcd's current
    revision, so resuming from a version seen before the restart is answered with "too old
    resource version" (410), and the cache must relist. A write straight to etcd while the
    API server is away makes sure the revision moved (other clients would have written)."""
    ns = k8s_namespace
    api = apps(k8s_cluster)
    for name in ("kept", "deleted"):
        api.create_namespaced_deployment(ns, deployment(name, replicas=0))
    # A slow first retry leaves a window after the restart for changes the watch never sees.
    cache = start_cache(
        [ns],
        kinds=[Kind.DEPLOYMENTS],
        settings=WatchSettings(backoff=lambda: Backoff(initial=6.0, cap=6.0)),
    )
    poll_until("both deployments", lambda: len(cache.list(Kind.DEPLOYMENTS, ns)) == 2)
    before = cache.stats().relists

    etcd = etcd_url(k8s_cluster)
    k8s_cluster.stop_apiserver()
    poll_until("the cache to notice", lambda: cache.connection.status == "reconnecting")
    bump_etcd_revision(etcd)
    k8s_cluster.start_apiserver()
    api.delete_namespaced_deployment("deleted", ns)
    api.create_namespaced_deployment(ns, deployment("created", replicas=0))

    poll_until("a relist", lambda: cache.stats().relists > before, timeout=120)
    poll_until(
        "the cache to converge",
        lambda: names(cache, Kind.DEPLOYMENTS, ns) == {"kept", "created"},
        timeout=120,
    )
    poll_until("live again", lambda: cache.connection.live, timeout=120)


def test_api_server_restart_shows_reconnecting_then_live_and_later_changes_arrive(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    ns = k8s_namespace
    recorder = Recorder()
    cache = start_cache([ns])
    cache.subscribe(recorder)
    # A second cache, stopped while it cannot reach the server: stop() must not hang.
    doomed_ns = k8s_cluster.create_namespace(f"{ns}-b")
    doomed = start_cache([doomed_ns], kinds=[Kind.DEPLOYMENTS, Kind.PODS])
    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("before", replicas=1))
    poll_until("the first deployment", lambda: cache.get(Kind.DEPLOYMENTS, ns, "before"))

    k8s_cluster.stop_apiserver()
    state = poll_until(
        "reconnecting",
        lambda: c if (c := cache.connection).status == "reconnecting" else None,
    )
    poll_until("the second cache to notice", lambda: not doomed.connection.live)
    doomed.stop()
    assert not [t for t in cache_threads() if t.name.endswith(f"@{doomed_ns}")]
    assert doomed.connection.status == "stopped"
    assert state.reason
    assert state.last_error
    assert state.since.tzinfo is not None
    assert cache.get(Kind.DEPLOYMENTS, ns, "before") is not None  # the cache still answers
    k8s_cluster.start_apiserver()
    poll_until("live again", lambda: cache.connection.live, timeout=120)

    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("after", replicas=1))
    batch(k8s_cluster).create_namespaced_job(ns, job("train"))
    # A pod of its own: the controllers reconnect with their own backoff (minutes on a busy
    # machine), and what is under test is this cache's pod watch, not theirs.
    core(k8s_cluster).create_namespaced_pod(ns, bare_pod("after-pod"))
    poll_until("the new deployment", lambda: cache.get(Kind.DEPLOYMENTS, ns, "after"))
    poll_until("the new job", lambda: cache.get(Kind.JOBS, ns, "train"))
    poll_until("the new pod", lambda: cache.get(Kind.PODS, ns, "after-pod"))
    assert cache.stats().reconnects > 0
    # The probe saw the server answer again and woke the watchers, instead of each waiting
    # out its backoff (up to 30 s).
    assert cache.stats().resumes >= 1
    statuses = recorder.statuses()
    assert "reconnecting" in statuses
    assert statuses[-1] == "live"
    assert cache.connection.last_error  # kept after recovery, for diagnostics
    k8s_cluster.delete_namespace(doomed_ns)


def test_a_hung_api_server_is_shown_not_answering_and_changes_flow_again_once_it_answers(
    k8s_cluster: K8sCluster, k8s_namespace: str, start_cache: StartCache
) -> None:
    """A server that accepts connections and never answers (SIGSTOP, as an overloaded or
    partitioned control plane): the watches alone would wait minutes and look live."""
    ns = k8s_namespace
    cache = start_cache([ns], kinds=[Kind.DEPLOYMENTS, Kind.PODS])
    poll_until("live", lambda: cache.connection.live)
    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("before", replicas=0))
    poll_until("the first deployment", lambda: cache.get(Kind.DEPLOYMENTS, ns, "before"))

    with k8s_cluster.frozen_apiserver():
        state = poll_until(
            "not answering",
            lambda: c if (c := cache.connection).status == "reconnecting" else None,
            timeout=60,
        )
        assert state.reason == NOT_ANSWERING
        assert "timed out" in (state.last_error or "")
        assert cache.get(Kind.DEPLOYMENTS, ns, "before") is not None  # stale, still shown

    poll_until("live again", lambda: cache.connection.live, timeout=60)
    assert cache.stats().resumes >= 1
    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("after", replicas=0))
    poll_until("a change made after", lambda: cache.get(Kind.DEPLOYMENTS, ns, "after"))


def test_actions_on_a_cluster_that_does_not_answer_are_refused_at_once_and_nothing_is_sent(
    k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    ns = k8s_namespace
    apps(k8s_cluster).create_namespaced_deployment(ns, deployment("steady", replicas=1))
    backend = KubernetesBackend(
        load_profile("kwok"), api_client=k8s_cluster.api_client(), namespaces=[ns]
    )
    try:
        assert backend.start()
        poll_until("live", lambda: backend.connection().live)
        with k8s_cluster.frozen_apiserver():
            poll_until("not answering", lambda: not backend.connection().live, timeout=60)
            refused = backend.scale(ns, "steady", 5)
            assert not refused.ok
            assert "the cluster has not answered since" in refused.message
            assert "nothing was sent" in refused.message
        poll_until("live again", lambda: backend.connection().live, timeout=60)
        assert apps(k8s_cluster).read_namespaced_deployment("steady", ns).spec.replicas == 1
        assert backend.scale(ns, "steady", 2).ok  # answered again: acting works again
    finally:
        backend.close()
