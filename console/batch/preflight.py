"""Checks before a batch sends anything: read-only, RBAC per namespace, targets that exist and
can roll out. Each problem is a sentence that says what to do."""

from __future__ import annotations

from typing import Any

from console.batch.plan import Plan
from console.model import DeploymentState

# What each action needs from RBAC (the same verbs the CLI checks for single actions).
VERBS = {"delete": "delete"}


def problems(backend: Any, plan: Plan, *, read_only: bool) -> list[str]:
    """Why the plan must not start; empty when it may."""
    if read_only:
        return [f"read-only: this profile (or --readonly) allows no changes; {plan.spec.action} "
                "was not sent"]  # fmt: skip
    found: list[str] = []
    verb = VERBS.get(plan.spec.action, "patch")
    for namespace in sorted({t[0] for t in plan.targets}):
        if not backend.can(verb, "deployments", namespace):
            found.append(
                f"forbidden: you may not {verb} deployments in namespace {namespace}; "
                "nothing was sent (ask for a role that allows it)"
            )
    if found:
        return found
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
