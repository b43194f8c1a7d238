"""``fleetdeck top``: the metrics of the session's deployments, once or with ``-w``.

Over several clusters each cluster is measured by its own collector (its own metrics source:
its pod proxy, its Prometheus), all refreshed side by side; the table gains a CLUSTER column,
a line per cluster and a fleet-wide line whose percentiles come from the clusters' latency
histograms summed (``console.metrics.clusters``)."""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from console.cli.errors import ActionFailed
from console.cli.printing import print_json, print_json_line, print_table
from console.core.clusters import ClusterSessions
from console.core.session import Session
from console.metrics.readings import Key
from console.views.format import printable


def top(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """The metrics of the profile's deployments (or -l's); rates from a scrape source need two
    reads, so a one-shot run reads twice one interval apart."""
    if fleet.several:
        return _across_clusters(fleet, args)
    return _one_cluster(fleet.only("top"), args)


def _one_cluster(session: Session, args: argparse.Namespace) -> int:
    from console.metrics import collector_for, report

    profile, backend = session.profile, session.backend
    collector = collector_for(profile, backend)
    try:
        keys = {d.key for d in backend.deployments(args.selector)}
        collector.set_wanted(keys)
        collector.refresh()
        while True:
            time.sleep(profile.metrics.interval_seconds)
            collector.refresh()
            if collector.error and not args.watch:
                raise ActionFailed(f"no metrics: {collector.error}")
            snapshot = {k: m for k, m in collector.snapshot().items() if k in keys}
            totals = collector.fleet()
            if args.json:
                found = report.as_json(
                    snapshot,
                    totals,
                    source=collector.source.name,
                    window_s=collector.window_s,
                    error=collector.error,
                )
                (print_json_line if args.watch else print_json)(found)
            else:
                print_table(report.HEADERS, report.table_rows(snapshot, totals))
                failures = report.problems(snapshot)
                for line in failures + ([collector.error] if collector.error else []):
                    print(f"  ! {printable(line)}")
            sys.stdout.flush()
            if not args.watch:
                return 0
            if not args.json:
                print()
            keys = {d.key for d in backend.deployments(args.selector)}
            collector.set_wanted(keys)
    finally:
        collector.stop()


def _across_clusters(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """Every open cluster's collector refreshed side by side each interval (the longest of
    the clusters' intervals: each source gets at least its own between two reads). A cluster
    whose source does not answer is said (``! cluster b: ...``) beside the others' numbers;
    a cluster that could not be opened is said on stderr. Either makes the exit status 1."""
    from console.metrics import MetricsCollector, collector_for, report
    from console.metrics.clusters import AcrossClusters, ClusterNumbers

    for line in fleet.problems():
        print(f"fleetdeck: {printable(line)}", file=sys.stderr)
    collectors = {
        name: collector_for(session.profile, session.backend)
        for name, session in fleet.sessions.items()
    }
    interval = max(s.profile.metrics.interval_seconds for s in fleet.sessions.values())
    pool = ThreadPoolExecutor(len(collectors), thread_name_prefix="top-cluster")

    def wanted() -> dict[str, set[Key]]:
        keys = {
            name: {d.key for d in session.backend.deployments(args.selector)}
            for name, session in fleet.sessions.items()
        }
        for name, collector in collectors.items():
            collector.set_wanted(keys[name])
        return keys

    def refresh_all() -> None:
        def refresh(collector: MetricsCollector) -> None:
            collector.refresh()

        list(pool.map(refresh, collectors.values()))  # raises what a refresh raised

    try:
        keys = wanted()
        refresh_all()
        while True:
            time.sleep(interval)
            refresh_all()
            across = AcrossClusters.of(
                [ClusterNumbers.of(n, c, keys[n]) for n, c in collectors.items()]
            )
            if not across.answered and not args.watch:
                failures = "; ".join(f"cluster {c.cluster}: {c.error}" for c in across.failed)
                raise ActionFailed(f"no metrics: {failures}")
            if args.json:
                (print_json_line if args.watch else print_json)(report.clusters_as_json(across))
            else:
                print_table(report.CLUSTER_HEADERS, report.cluster_table_rows(across))
                for line in across.problems():
                    print(f"  ! {printable(line)}")
            sys.stdout.flush()
            if not args.watch:
                return 1 if across.failed or fleet.unavailable else 0
            if not args.json:
                print()
            keys = wanted()
    finally:
        pool.shutdown(wait=True)
        for collector in collectors.values():
            collector.stop()
