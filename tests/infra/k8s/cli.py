"""``tests/infra/cluster up|down|status|build|restart-apiserver``: parsing and printing only."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .build import BuildError, ensure_built, say
from .cluster import USERS, Cluster, ClusterError, ClusterState, context_for, rss_bytes
from .layout import KUBE_VERSION, default_layout

EXIT_NOT_RUNNING = 3


def print_export(cluster: Cluster) -> None:
    contexts = ", ".join(context_for(user) for user in USERS)
    say(f"kubeconfig {cluster.kubeconfig} (contexts: {contexts})")
    print(f"export KUBECONFIG={cluster.kubeconfig}")


def print_status(cluster: Cluster, state: ClusterState) -> None:
    if not state.any_running:
        print("cluster: not running")
        return
    health = "ready" if state.healthy else "NOT healthy"
    print(f"cluster: {health}, Kubernetes {KUBE_VERSION}, API {state.server}")
    total = 0
    for component in state.components:
        rss = rss_bytes(component.pid) if component.running and component.pid else 0
        total += rss
        what = f"pid {component.pid}, {rss / 2**20:.0f} MiB" if component.running else "stopped"
        print(f"  {component.name:<24} {what}")
    print(f"  {'total RSS':<24} {total / 2**20:.0f} MiB")
    print(f"kubeconfig: {cluster.kubeconfig}")


def run(command: str, cluster: Cluster) -> int:
    if command == "build":
        ensure_built(cluster.layout)
    elif command == "up":
        cluster.up()
        print_export(cluster)
    elif command == "down":
        cluster.down()
        say("cluster down")
    elif command == "status":
        state = cluster.state()
        print_status(cluster, state)
        return 0 if state.healthy else EXIT_NOT_RUNNING
    elif command == "restart-apiserver":
        cluster.restart_apiserver()
    elif command == "env":
        print(f"export KUBECONFIG={cluster.kubeconfig}")
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/infra/cluster",
        description="The fleetdeck test Kubernetes cluster (KWOK nodes, real control plane).",
    )
    parser.add_argument(
        "command", choices=["up", "down", "status", "build", "restart-apiserver", "env"]
    )
    args = parser.parse_args(argv)
    try:
        return run(args.command, Cluster(default_layout()))
    except (BuildError, ClusterError) as error:
        say(f"error: {error}")
        return 1
