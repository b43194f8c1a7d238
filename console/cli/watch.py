"""``fleetdeck watch``: a headless watcher for scripts and a second tmux pane. Every cluster of
the session is measured by its own collector (as ``top``); each refresh, the deployments over
their SLO (``console.metrics.breaches``) are compared with the last: a breach that starts or
ends is printed, and so is a batch that halts. It runs until ``--for`` has passed or Ctrl-C,
and exits 1 if any breach or halt happened while it watched (0 otherwise)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from console.audit import parse_since
from console.batch.journal import halted_batches
from console.cli.errors import UsageError
from console.core.clusters import ClusterSessions
from console.metrics.breaches import Breach, BreachTracker, Where, breaches_in, latest_only
from console.views.format import printable


def watch(fleet: ClusterSessions, args: argparse.Namespace) -> int:
    from console.metrics import MetricsCollector, collector_for

    try:
        seconds = parse_since(args.for_).total_seconds() if args.for_ else None
    except ValueError as exc:
        raise UsageError(f"--for: {exc}") from None
    for line in fleet.problems():
        print(f"fleetdeck: {printable(line)}", file=sys.stderr)
    say = _printer(args.json)
    collectors: dict[str, MetricsCollector] = {
        name: collector_for(session.profile, session.backend)
        for name, session in fleet.sessions.items()
    }
    interval = max(s.profile.metrics.interval_seconds for s in fleet.sessions.values())
    tracker = BreachTracker()
    found: dict[str, list[Breach]] = {}  # by cluster, as last measured
    unmeasured: set[str] = set()  # clusters whose source fails now (said once)
    halted = halted_batches()
    happened = False
    deadline = None if seconds is None else time.monotonic() + seconds
    names = ", ".join(fleet.sessions)
    print(f"watching {names} for SLO breaches and halted batches"
          f"{'' if seconds is None else f' for {args.for_}'} (Ctrl-C stops)",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        while deadline is None or time.monotonic() < deadline:
            for name, collector in collectors.items():
                session = fleet.sessions[name]
                models = {d.key: d.model for d in session.backend.deployments(args.selector)}
                collector.set_wanted(set(models))
                collector.refresh()
                if collector.error:  # not measured now: its breaches stand as last seen
                    if name not in unmeasured:
                        say("unmeasured", name, f"cluster {name}: no metrics: {collector.error}")
                    unmeasured.add(name)
                    continue
                unmeasured.discard(name)
                current = latest_only(collector.snapshot())
                snapshot = {k: m for k, m in current.items() if k in models}
                cluster = name if fleet.several else ""
                found[name] = breaches_in(snapshot, models, session.profile.slo, cluster)
            every = [breach for each in found.values() for breach in each]
            started, ended = tracker.update(every, time.time())
            for breach in started:
                say("breach", breach.name, breach.describe())
            for where in ended:
                say("recovered", _name(where), f"{_name(where)}: back within its SLO")
            now_halted = halted_batches()
            new_halts = {b: why for b, why in now_halted.items() if b not in halted}
            for batch_id, why in new_halts.items():
                say("halted", batch_id, f"batch {batch_id} halted: {why}")
            halted = now_halted
            happened = happened or bool(started) or bool(new_halts)
            left = interval if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(interval, left)))
    except KeyboardInterrupt:
        pass
    finally:
        for collector in collectors.values():
            collector.stop()
    return 1 if happened or tracker.current else 0


def _name(where: Where) -> str:
    return "/".join(part for part in where if part)


def _printer(as_json: bool) -> Callable[[str, str, str], None]:
    """One line per event: ``TIME KIND text``, or a JSON object per line."""

    def say(kind: str, subject: str, text: str) -> None:
        at = datetime.now(UTC).isoformat(timespec="seconds")
        if as_json:
            line = json.dumps({"time": at, "event": kind, "subject": subject, "text": text})
        else:
            line = printable(f"{at} {kind.upper()} {text}")
        print(line, flush=True)

    return say
