"""Fleet cache benchmark: what keeping Deployments as JSON dicts saves over the client's models.

    python -m bench.console.fleet_cache [--count 2000] [--kubeconfig PATH]

Against the test cluster (``tests/infra/cluster up``): makes a namespace with ``--count``
Deployments (replicas 0), then measures, on the same list pages (500 per page, as the cache
reads them): fetching the raw bytes, ``json.loads`` of them, and ``ApiClient.deserialize`` into
``V1DeploymentList`` models (what the client does by default); the memory each form holds
(tracemalloc); and a ``FleetCache`` of that namespace from start to synced. Deletes the
namespace at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from console.backends.kubernetes.cache import FleetCache, Kind

T = TypeVar("T")
DEFAULT_KUBECONFIG = Path.home() / ".cache/fleetdeck/run/cluster/kubeconfig"


def deployment(name: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "fleetdeck"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "predictor", "image": "predictor:1"}]},
            },
        },
    }


def timed(what: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = what()
    return result, time.perf_counter() - began


def held(what: Callable[[], T]) -> tuple[T, int]:
    """``what()`` and the bytes its result still holds (tracemalloc)."""
    tracemalloc.start()
    result = what()
    size, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, size


def pages(api: Any, namespace: str) -> list[bytes]:
    raw: list[bytes] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 500, "_preload_content": False}
        if token:
            kwargs["_continue"] = token
        data = api.list_namespaced_deployment(namespace, **kwargs).read()
        raw.append(data)
        token = json.loads(data)["metadata"].get("continue")
        if not token:
            return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument(
        "--kubeconfig", default=os.environ.get("KUBECONFIG", str(DEFAULT_KUBECONFIG))
    )
    args = parser.parse_args()

    from kubernetes import client, config, watch

    api_client = config.new_client_from_config(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
    # Any: the client's stubs want models, we pass the JSON-shaped dicts it also accepts.
    core: Any = client.CoreV1Api(api_client)
    apps: Any = client.AppsV1Api(api_client)
    namespace = f"bench-fleet-cache-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        _, created_in = timed(
            lambda: list(
                ThreadPoolExecutor(32).map(
                    lambda i: apps.create_namespaced_deployment(namespace, deployment(f"m{i:05}")),
                    range(args.count),
                )
            )
        )
        raw, fetch_s = timed(lambda: pages(apps, namespace))
        dicts, parse_s = timed(lambda: [json.loads(page) for page in raw])
        models, model_s = timed(
            lambda: [
                api_client.deserialize(page.decode(), "V1DeploymentList", "application/json")
                for page in raw
            ]
        )
        assert sum(len(d["items"]) for d in dicts) == args.count
        del dicts, models
        _, dict_bytes = held(lambda: [json.loads(page) for page in raw])
        _, model_bytes = held(
            lambda: [
                api_client.deserialize(page.decode(), "V1DeploymentList", "application/json")
                for page in raw
            ]
        )
        # A watch event per Deployment: the client's Watch parses the line, dumps the object
        # back to JSON and deserializes it into a model; the cache only parses the line.
        lines = [
            json.dumps({"type": "MODIFIED", "object": item})
            for page in raw
            for item in json.loads(page)["items"]
        ]
        _, event_s = timed(lambda: [json.loads(line) for line in lines])
        watcher = watch.Watch()  # type: ignore[no-untyped-call]
        _, watch_s = timed(
            lambda: [watcher.unmarshal_event(line, "V1Deployment") for line in lines]  # type: ignore[no-untyped-call]
        )
        cache = FleetCache(api_client, [namespace], kinds=[Kind.DEPLOYMENTS])

        def sync() -> None:
            cache.start()
            if not cache.wait_synced(120):
                raise SystemExit("the cache never synced")

        (_, synced_s), cache_bytes = held(lambda: timed(sync))
        assert len(cache.list(Kind.DEPLOYMENTS)) == args.count
        cache.stop()

        kib = sum(len(page) for page in raw) / 1024
        n = args.count
        print(f"{n} Deployments, {kib:.0f} KiB of list JSON, created in {created_in:.1f}s")
        print("| step | s | µs/object | MiB held |")
        print("|---|---|---|---|")
        print(f"| fetch list pages (raw bytes) | {fetch_s:.3f} | {fetch_s / n * 1e6:.0f} | |")
        print(
            f"| json.loads (dicts) | {parse_s:.3f} | {parse_s / n * 1e6:.0f} "
            f"| {dict_bytes / 2**20:.1f} |"
        )
        print(
            f"| ApiClient.deserialize (V1Deployment models) | {model_s:.3f} "
            f"| {model_s / n * 1e6:.0f} | {model_bytes / 2**20:.1f} |"
        )
        print(
            f"| FleetCache start → synced (list, store without managedFields) | {synced_s:.3f} "
            f"| {synced_s / n * 1e6:.0f} | {cache_bytes / 2**20:.1f} |"
        )
        print(
            f"| watch event: json.loads (ours) | {event_s:.3f} | {event_s / n * 1e6:.0f} | |\n"
            f"| watch event: Watch.unmarshal_event (models) | {watch_s:.3f} "
            f"| {watch_s / n * 1e6:.0f} | |"
        )
        print(
            f"models take {model_s / parse_s:.1f}× the time and "
            f"{model_bytes / dict_bytes:.1f}× the memory of dicts; "
            f"per watch event {watch_s / event_s:.1f}× the time"
        )
    finally:
        core.delete_namespace(namespace)


if __name__ == "__main__":
    main()
