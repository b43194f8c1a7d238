"""A fixed fleet in memory, for snapshot tests only (stable pixels need stable data and time).

Every behaviour test drives the deck against the real KWOK cluster; this stands in for a
backend only where a snapshot must not depend on what a cluster happens to report.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from console.backends.base import Connection
from console.model import (
    ActionResult,
    DeploymentState,
    EventInfo,
    ModelDeployment,
    PodInfo,
    RevisionInfo,
)
from console.tui.screens.deployment import Condition

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
STATES = [
    (DeploymentState.AVAILABLE, ""),
    (DeploymentState.AVAILABLE, ""),
    (DeploymentState.PROGRESSING, "ReplicaSet digits-7d9f is progressing"),
    (DeploymentState.DEGRADED, "1 of 2 available"),
    (DeploymentState.FAILED, "ProgressDeadlineExceeded"),
    (DeploymentState.PAUSED, ""),
]


def fixed_deployments(count: int = 30) -> list[ModelDeployment]:
    models = ["digits", "iris", "mnist-cnn", "sentiment"]
    rows = []
    for i in range(count):
        state, reason = STATES[i % len(STATES)]
        desired = 2 + i % 3
        ready = desired if state is DeploymentState.AVAILABLE else max(0, desired - 1)
        rows.append(
            ModelDeployment(
                name=f"{models[i % 4]}-{i:03d}",
                namespace="models" if i % 3 else "models-staging",
                model=models[i % 4],
                version=str(1 + i % 5),
                desired=desired,
                ready=ready,
                updated=desired,
                available=ready,
                state=state,
                reason=reason,
                revision=1 + i % 7,
                created=NOW - timedelta(hours=i * 5 + 1),
                image="fleetdeck-predictor:0.1.0",
                labels={"fleetdeck.io/model": models[i % 4], "tier": "gold" if i % 2 else "bronze"},
            )
        )
    return rows


class FixedFleet:
    """Reads answer from the fixed list; there are no changes and no mutations."""

    name = "fixed"
    namespaces = ("models", "models-staging")

    def __init__(self, deployments: list[ModelDeployment]) -> None:
        self._rows = {d.key: d for d in deployments}

    def connection(self) -> Connection:
        return Connection(True, NOW)

    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        return sorted(self._rows.values(), key=lambda d: d.key)

    def deployment(self, namespace: str, name: str) -> ModelDeployment | None:
        return self._rows.get((namespace, name))

    def history(self, namespace: str, name: str) -> list[RevisionInfo]:
        d = self._rows[(namespace, name)]
        last = d.revision or 1
        return [
            RevisionInfo(
                n,
                f"rollout {d.model} v{n} by alice via fleetdeck",
                d.model,
                str(n),
                (d.image,),
                d.desired if n == d.revision else 0,
                created=NOW - timedelta(minutes=7 * (last - n) + len(name) % 5),
            )
            for n in range(1, last + 1)
        ]

    def histories(self) -> dict[tuple[str, str], list[RevisionInfo]]:
        return {key: self.history(*key) for key in sorted(self._rows)}

    def warnings(self) -> list[tuple[tuple[str, str], EventInfo]]:
        failed = [d for d in self._rows.values() if d.state is DeploymentState.FAILED][:1]
        return [
            (
                d.key,
                EventInfo(
                    NOW - timedelta(minutes=2),
                    "Warning",
                    "BackOff",
                    f"Pod/{d.name}-6c9d8-x",
                    "Back-off restarting failed container",
                    4,
                ),
            )
            for d in failed
        ]

    def pods(self, namespace: str, name: str) -> list[PodInfo]:
        d = self._rows[(namespace, name)]
        return [
            PodInfo(
                f"{name}-6c9d8-{suffix}",
                namespace,
                "Running" if i < d.ready else "Pending",
                i < d.ready,
                i,
                f"kwok-node-{i}",
                "" if i < d.ready else "CrashLoopBackOff",
                NOW - timedelta(minutes=30 + i),
                d.revision,
            )
            for i, suffix in enumerate(["a1b2c", "d3e4f", "g5h6i", "j7k8l"][: d.desired])
        ]

    def events(self, namespace: str, name: str) -> list[EventInfo]:
        return [
            EventInfo(
                NOW - timedelta(minutes=9),
                "Normal",
                "ScalingReplicaSet",
                f"Deployment/{name}",
                "Scaled up replica set to 2",
            ),
            EventInfo(
                NOW - timedelta(minutes=2),
                "Warning",
                "BackOff",
                f"Pod/{name}-6c9d8-d3e4f",
                "Back-off restarting failed container",
                4,
            ),
        ]

    def conditions(self, namespace: str, name: str) -> list[Condition]:
        return [
            Condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                "2026-11-26T11:50:00Z",
            ),
            Condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{name}-6c9d8" has successfully progressed.',
                "2026-11-26T11:51:00Z",
            ),
        ]

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return True

    def _refuse(self, namespace: str, name: str, *args: object, **kwargs: object) -> ActionResult:
        return ActionResult(f"{namespace}/{name}", False, "the fixed fleet takes no actions")

    rollout = rollback = scale = restart = pause = resume = delete = _refuse

    def close(self) -> None:
        pass
