"""An autoscaler as every front-end says it: one summary line (replicas now and wanted, the
metric against its target, the engine), its conditions and its last scaling decisions with
their reasons (``fleetdeck describe``, the Deployment screen's Metrics tab)."""

from __future__ import annotations

from datetime import UTC, datetime

from console.model import AutoscalerInfo, ScalingDecision
from console.views.format import age, printable

DECK_DECISIONS = 5  # the newest shown on the Metrics tab; describe shows every one kept

ENGINES = {
    "hpa": "HPA",
    "keda": "KEDA ScaledObject",
    "local": "local runtime",
}


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary(info: AutoscalerInfo) -> str:
    """``digits (KEDA ScaledObject): 1..4 replicas at 10 req/s per pod (now 24.1 req/s per
    pod, current 3, desired 3)``."""
    engine = ENGINES.get(info.engine, info.engine)
    now = f"now {', '.join(info.current)}, " if info.current else ""
    foreign = "" if info.managed_by_fleetdeck else "; not made by fleetdeck"
    return printable(
        f"{info.name} ({engine}{foreign}): {info.min_replicas}..{info.max_replicas} replicas "
        f"at {', '.join(info.targets) or '-'} ({now}current {_count(info.current_replicas)}, "
        f"desired {_count(info.desired_replicas)})"
    )


def decision_cells(decision: ScalingDecision, now: datetime | None = None) -> list[str]:
    """AGE, FROM, TO, WHY; FROM is ``?`` when the engine did not say (0)."""
    when = datetime.fromtimestamp(decision.at, UTC)
    before = str(decision.from_replicas) if decision.from_replicas > 0 else "?"
    return [age(when, now), before, str(decision.to_replicas), printable(decision.reason)]


def deck_lines(info: AutoscalerInfo, now: datetime | None = None) -> list[str]:
    """The Metrics tab's text: the summary, the newest decisions, then the conditions (the
    tab cuts from the bottom on a small terminal)."""
    lines = [f"autoscaler {summary(info)}"]
    if info.decisions:
        lines.append("  last scaling decisions:")
        for decision in info.decisions[:DECK_DECISIONS]:
            when, before, after, why = decision_cells(decision, now)
            lines.append(f"    {when:>4} ago  {before} → {after}  {why}")
    else:
        lines.append("  no scaling decision yet")
    lines += [
        "  " + printable(f"{c.type} {c.status} {c.reason}: {c.message}".rstrip(": "))
        for c in info.conditions
    ]
    return lines
