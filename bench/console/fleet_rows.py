"""How long the Fleet rows of a large fleet take to compute from the cache's objects.

    python -m bench.console.fleet_rows [--deployments 5000] [--history 10]

Builds JSON objects shaped as the API server sends them (each Deployment with ``--history``
ReplicaSets and two pods), feeds them to ``KubernetesBackend.deployments`` through a stand-in for
the cache (no cluster: this measures our conversion, not the network), and reports the time per
call against the naive pairing it replaced (every Deployment against every ReplicaSet and pod),
on a fleet small enough for the naive one to finish.
"""

from __future__ import annotations

import argparse
import time
import types
from typing import Any

from console.backends.kubernetes import convert
from console.backends.kubernetes.backend import KubernetesBackend
from console.backends.kubernetes.cache import Kind


def fleet(count: int, history: int) -> dict[Kind, list[dict[str, Any]]]:
    deployments, replicasets, pods = [], [], []
    for i in range(count):
        name, uid = f"model-{i}", f"uid-{i}"
        labels = {
            "app.kubernetes.io/name": name,
            "fleetdeck.io/model": "digits",
            "fleetdeck.io/model-version": "2",
        }
        deployments.append(
            {
                "metadata": {
                    "name": name,
                    "namespace": "models",
                    "uid": uid,
                    "generation": 2,
                    "labels": labels,
                    "annotations": {"deployment.kubernetes.io/revision": str(history)},
                },
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "predictor", "image": "p"}]},
                    },
                },
                "status": {
                    "observedGeneration": 2,
                    "replicas": 2,
                    "updatedReplicas": 2,
                    "readyReplicas": 2,
                    "availableReplicas": 2,
                },
            }
        )
        for revision in range(1, history + 1):
            replicasets.append(
                {
                    "metadata": {
                        "name": f"{name}-{revision}",
                        "namespace": "models",
                        "uid": f"{uid}-{revision}",
                        "labels": {"pod-template-hash": f"{i}-{revision}"},
                        "annotations": {"deployment.kubernetes.io/revision": str(revision)},
                        "ownerReferences": [{"kind": "Deployment", "uid": uid}],
                    },
                    "spec": {"template": {}},
                    "status": {"replicas": 2 if revision == history else 0},
                }
            )
        for number in range(2):
            pods.append(
                {
                    "metadata": {
                        "name": f"{name}-{number}",
                        "namespace": "models",
                        "labels": {
                            "app.kubernetes.io/name": name,
                            "pod-template-hash": f"{i}-{history}",
                        },
                    },
                    "status": {
                        "phase": "Running",
                        "containerStatuses": [{"ready": True, "restartCount": 0}],
                    },
                }
            )
    return {Kind.DEPLOYMENTS: deployments, Kind.REPLICASETS: replicasets, Kind.PODS: pods}


def backend_over(objects: dict[Kind, list[dict[str, Any]]]) -> KubernetesBackend:
    backend = KubernetesBackend.__new__(KubernetesBackend)  # no client: only the cache is read
    backend.cache = types.SimpleNamespace(  # type: ignore[assignment]
        list=lambda kind, namespace=None: objects[kind]
    )
    return backend


def naive(objects: dict[Kind, list[dict[str, Any]]]) -> int:
    """The pairing before indexing: every Deployment scans every ReplicaSet and pod."""
    rows = [
        convert.deployment(d, objects[Kind.REPLICASETS], convert.selected_by(d, objects[Kind.PODS]))
        for d in objects[Kind.DEPLOYMENTS]
    ]
    return len(rows)


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deployments", type=int, default=5000)
    parser.add_argument("--history", type=int, default=10)
    args = parser.parse_args()
    big = fleet(args.deployments, args.history)
    indexed = min(timed(backend_over(big).deployments) for _ in range(3))
    small = fleet(200, args.history)
    small_indexed = min(timed(backend_over(small).deployments) for _ in range(3))
    small_naive = timed(lambda: naive(small))
    print(
        f"{args.deployments} deployments, {args.history} ReplicaSets each: "
        f"{indexed * 1000:.0f} ms per Fleet refresh"
    )
    print(
        f"200 deployments: indexed {small_indexed * 1000:.1f} ms, naive "
        f"{small_naive * 1000:.0f} ms ({small_naive / small_indexed:.0f} x)"
    )


if __name__ == "__main__":
    main()
