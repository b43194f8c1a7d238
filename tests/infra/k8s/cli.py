"""``tests/infra/cluster up|down|status|build|restart-apiserver|env|autoscaling-up|autoscaling-down
[--name NAME]``: parsing and printing only."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from .build import BuildError, ensure_autoscaling_built, ensure_built, say
from .cluster import (
    USERS,
    Cluster,
    ClusterError,
    ClusterState,
    context_for,
    cpu_seconds,
    rss_bytes,
)
from .layout import DEFAULT_NAME, KUBE_VERSION, Layout, check_cluster_name, default_layout

EXIT_NOT_RUNNING = 3


def kubeconfig_variable(layout: Layout) -> str:
    """The variable ``env`` and ``up`` export: KUBECONFIG for the first cluster, and
    FLEETDECK_KUBECONFIG_<NAME> for the others, so starting a second cluster in the same shell
    does not take KUBECONFIG away from the first."""
    if layout.is_default:
        return "KUBECONFIG"
    return "FLEETDECK_KUBECONFIG_" + layout.name.upper().replace("-", "_")


def export_line(cluster: Cluster) -> str:
    return f"export {kubeconfig_variable(cluster.layout)}={cluster.kubeconfig}"


def print_export(cluster: Cluster) -> None:
    contexts = ", ".join(context_for(user) for user in USERS)
    say(f"kubeconfig {cluster.kubeconfig} (contexts: {contexts})")
    print(export_line(cluster))


def cpu_percent_by_pid(pids: Sequence[int], seconds: float) -> dict[int, float]:
    """Each pid's CPU use over ``seconds`` of wall time, in percent of one core."""
    before = {pid: cpu_seconds(pid) for pid in pids}
    time.sleep(seconds)
    return {pid: 100 * (cpu_seconds(pid) - before[pid]) / seconds for pid in pids}


def print_status(cluster: Cluster, state: ClusterState, sample_seconds: float) -> None:
    name = cluster.layout.name
    if not state.any_running:
        print(f"cluster {name}: not running")
        return
    health = "ready" if state.healthy else "NOT healthy"
    print(f"cluster {name}: {health}, Kubernetes {KUBE_VERSION}, API {state.server}")
    ports = cluster.component_ports()
    running = [c.pid for c in state.components if c.running and c.pid]
    running += [c.pid for c in cluster.autoscaling().components() if c.running and c.pid]
    cpu = cpu_percent_by_pid(running, sample_seconds) if sample_seconds > 0 else {}
    total_rss = 0
    for component in state.components:
        listens = ",".join(str(port) for port in sorted(ports.get(component.name, [])))
        if component.running and component.pid:
            rss = rss_bytes(component.pid)
            total_rss += rss
            what = f"pid {component.pid}, {rss / 2**20:.0f} MiB"
            if component.pid in cpu:
                what += f", {cpu[component.pid]:.1f}% CPU"
        else:
            what = "stopped"
        print(f"  {component.name:<24} {what:<34} ports {listens or '-'}")
    total = f"  {'total':<24} {total_rss / 2**20:.0f} MiB"
    if cpu:
        total += f", {sum(cpu.values()):.1f}% CPU (of one core, over {sample_seconds:g}s)"
    print(total)
    print(f"kubeconfig: {cluster.kubeconfig}")
    pipeline = cluster.autoscaling()
    if pipeline.folder.exists():
        print("autoscaling pipeline:")
        pipeline_ports = pipeline.ports()
        for part in pipeline.components():
            what = "stopped"
            if part.running and part.pid:
                what = f"pid {part.pid}, {rss_bytes(part.pid) / 2**20:.0f} MiB"
            if part.running and part.pid in cpu:
                what += f", {cpu[part.pid]:.1f}% CPU"
            print(f"  {part.name:<24} {what}")
        if pipeline_ports:
            listed = ", ".join(f"{name} {port}" for name, port in pipeline_ports.items())
            print(f"  ports: {listed}")


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    command = args.command
    if command == "build":
        ensure_built(cluster.layout)
        ensure_autoscaling_built(cluster.layout)
    elif command == "up":
        cluster.up()
        print_export(cluster)
    elif command == "down":
        cluster.down()
        say(f"cluster {cluster.layout.name} down")
    elif command == "status":
        state = cluster.state()
        print_status(cluster, state, args.sample)
        return 0 if state.healthy else EXIT_NOT_RUNNING
    elif command == "restart-apiserver":
        cluster.restart_apiserver()
    elif command == "env":
        print(export_line(cluster))
    elif command == "autoscaling-up":
        # A person's start: pytest sessions that use it later leave it running.
        cluster.autoscaling().up(pin=True)
        say(f"autoscaling pipeline of cluster {cluster.layout.name} running")
    elif command == "autoscaling-down":
        cluster.autoscaling().down()
        say(f"autoscaling pipeline of cluster {cluster.layout.name} stopped")
    return 0


def name_argument(value: str) -> str:
    try:
        return check_cluster_name(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="tests/infra/cluster",
        description="The fleetdeck test Kubernetes clusters (KWOK nodes, real control plane).",
    )
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "status",
            "build",
            "restart-apiserver",
            "env",
            "autoscaling-up",
            "autoscaling-down",
        ],
        help="build: every binary (the cluster's, metrics-server's and KEDA's); "
        "autoscaling-up/-down: start/stop metrics-server and KEDA beside a running cluster",
    )
    parser.add_argument(
        "--name",
        type=name_argument,
        default=DEFAULT_NAME,
        help=f"which cluster (a DNS-1123 label; default {DEFAULT_NAME!r}, the first cluster, "
        "at run/cluster; any other NAME runs at run/cluster-NAME on its own ports)",
    )
    parser.add_argument(
        "--sample",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="status: also measure each component's CPU use over SECONDS",
    )
    args = parser.parse_args(argv)
    try:
        return run(args, Cluster(default_layout(args.name)))
    except (BuildError, ClusterError) as error:
        say(f"error: {error}")
        return 1
    except BrokenPipeError:
        # `status | head`: the reader left; say nothing more (and no traceback at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
