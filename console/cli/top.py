"""``fleetdeck top``: the metrics of the session's deployments, once or with ``-w``."""

from __future__ import annotations

import argparse
import sys
import time

from console.cli.errors import ActionFailed
from console.cli.printing import print_json, print_json_line, print_table
from console.core.clusters import ClusterSessions
from console.views.format import printable


def top(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    """The metrics of the profile's deployments (or -l's); rates from a scrape source need two
    reads, so a one-shot run reads twice one interval apart."""
    from console.metrics import collector_for, report

    session = fleet.only("top")
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
