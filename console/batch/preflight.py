"""Checks before a batch sends anything: read-only, RBAC per namespace, targets that exist and
can roll out. Each problem is a sentence that says what to do."""

from __future__ import annotations

from console.backends.base import Backend
from console.batch.plan import Plan
from console.core.guard import Guard
from console.model import DeploymentState


def problems(backend: Backend, plan: Plan, checks: Guard) -> list[str]:
    """Why the plan must not start; empty when it may."""
    namespaces = {t[0] for t in plan.targets}
    refused = checks.refusals(plan.spec.action, namespaces)
    if refused:
        return [r.text for r in refused]
    found: list[str] = []
    rows = {row.key: row for row in backend.deployments()}
    missing = [f"{ns}/{name}" for ns, name in plan.targets if (ns, name) not in rows]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        found.append(f"not found: {shown}")
    if plan.rolling:
        paused = [
            f"{ns}/{name}"
            for ns, name in plan.targets
            if (ns, name) in rows and rows[(ns, name)].state is DeploymentState.PAUSED
        ]
        if paused:
            found.append(
                f"paused, so their rollouts would never finish: {', '.join(paused[:5])}"
                + (f" and {len(paused) - 5} more" if len(paused) > 5 else "")
                + "; resume them first (fleetdeck resume)"
            )
    return found
