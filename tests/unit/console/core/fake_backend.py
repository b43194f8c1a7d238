"""A backend that records what it is sent and answers ok: for the pure logic of the core's
checks and audit lines (what a real backend does is the contract tests' business)."""

from __future__ import annotations

from typing import cast

from console.backends.base import Backend
from console.model import ActionResult, DeployRequest, ScoringRequest, TrainingRequest


class RecordingBackend:
    name = "recording"

    def __init__(self, *, forbidden: frozenset[tuple[str, str]] = frozenset()) -> None:
        self.namespaces: tuple[str, ...] = ("models",)
        self.default_namespace = "models"
        self.sent: list[str] = []
        self.forbidden = forbidden  # (verb, namespace) RBAC refuses

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return (verb, namespace or "") not in self.forbidden

    def deploy(
        self, request: DeployRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        self.sent.append(f"deploy {request.name}")
        namespace = request.namespace or self.default_namespace
        return ActionResult(f"{namespace}/{request.name}", True, "created", dry_run)

    def train(self, request: TrainingRequest, *, dry_run: bool = False) -> list[ActionResult]:
        trials = 1
        for values in request.grid.values():
            trials *= len(values)
        self.sent.append(f"train {trials}")
        return [
            ActionResult(f"models/train-{request.model}-{n}", True, "created", dry_run)
            for n in range(trials)
        ]

    def score(
        self, request: ScoringRequest, *, dry_run: bool = False, verify: bool = True
    ) -> ActionResult:
        self.sent.append("score")
        return ActionResult(f"models/score-{request.model}", True, "created", dry_run)

    def cancel_job(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        self.sent.append(f"cancel {name}")
        return ActionResult(f"{namespace}/{name}", True, "cancelled", dry_run)

    def restart(self, namespace: str, name: str, *, dry_run: bool = False) -> ActionResult:
        self.sent.append(f"restart {name}")
        return ActionResult(f"{namespace}/{name}", True, "restarted", dry_run)

    def deployment(self, namespace: str, name: str) -> None:
        return None  # it keeps no deployments: audit lines say nothing of a state before

    def close(self) -> None:
        self.sent.append("closed")


def as_backend(fake: RecordingBackend) -> Backend:
    """The fake as the core sees it (it answers what these tests send)."""
    return cast(Backend, fake)
