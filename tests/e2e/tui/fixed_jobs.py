"""Fixed training jobs and fixed log lines, for snapshot tests only (stable pixels need stable
data and a frozen clock). Every behaviour test runs against the real KWOK cluster; this stands in
for a backend only where a snapshot must not depend on what a cluster happens to report.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from console.backends.base import LogRequest
from console.model import DeploymentState, JobPhase, ModelDeployment, TrainingJob
from training.logs import TrainingLog

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def fixed_lines(count: int, pods: tuple[str, ...] = ()) -> list[str]:
    """Predictor-like lines, a few of them errors; prefixed per pod when there are several."""
    lines = []
    for i in range(count):
        text = (
            f"12:00:{i % 60:02d} ERROR predict digits: input shape (1, 9, 9) is not (1, 8, 8)"
            if i % 17 == 5
            else f"12:00:{i % 60:02d} INFO 200 POST /v1/models/digits:predict {3 + i % 9} ms"
        )
        lines.append(f"[{pods[i % len(pods)]}] {text}" if len(pods) > 1 else text)
    return lines


def epoch_lines(epochs: int, of: int, exported: int | None = None) -> list[str]:
    out = io.StringIO()
    log = TrainingLog(out)
    for n in range(1, epochs + 1):
        metrics = {
            "loss": round(1.6 / n, 4),
            "accuracy": round(0.55 + 0.4 * (1 - 1 / n), 4),
            "val_loss": round(1.7 / n, 4),
            "val_accuracy": round(0.5 + 0.4 * (1 - 1 / n), 4),
        }
        log.epoch(n, of, metrics, 1200.0, 2.0)
    if exported is not None:
        log.event("exported", "published", model="digits", version=exported)
    return [line for line in out.getvalue().splitlines() if line.startswith("{")]


def _job(
    name: str,
    phase: JobPhase,
    *,
    gpus: int = 1,
    node: str = "kwok-gpu-0",
    reason: str = "",
    ran: int | None = 300,
    done: bool = False,
    sweep: str | None = None,
    trial: int | None = None,
) -> TrainingJob:
    started = NOW - timedelta(seconds=ran) if ran is not None else None
    finished = NOW - timedelta(seconds=20) if done and ran is not None else None
    return TrainingJob(
        name, "models", "digits", phase, gpus, node, reason, started, finished, sweep, trial
    )


JOBS = [
    _job("train-digits-a1b2c", JobPhase.SUCCEEDED, ran=900, done=True),
    _job("train-digits-d3e4f", JobPhase.RUNNING, ran=185),
    _job(
        "train-digits-g5h6i",
        JobPhase.PENDING,
        gpus=16,
        node="",
        ran=None,
        reason="0/5 nodes are available: 2 Insufficient nvidia.com/gpu, 3 node(s) didn't match "
        "Pod's node affinity/selector.",
    ),
    _job("train-digits-j7k8l-0", JobPhase.SUCCEEDED, ran=400, done=True, sweep="sweep-x", trial=0),
    _job("train-digits-j7k8l-1", JobPhase.FAILED, ran=120, done=True, sweep="sweep-x", trial=1),
]
LOGS = {
    "train-digits-a1b2c": epoch_lines(5, 5, exported=3),
    "train-digits-d3e4f": epoch_lines(2, 5),
    "train-digits-j7k8l-0": epoch_lines(3, 3, exported=4),
    "train-digits-j7k8l-1": epoch_lines(1, 3),
}


class FixedTraining:
    """Jobs, their pods and logs, and a few deployments; nothing changes, nothing is sent."""

    name = "fixed"
    namespaces = ("models",)
    default_namespace = "models"
    read_only = False

    def __init__(self, lines: list[str] | None = None) -> None:
        self.lines = lines or []

    def jobs(self) -> list[TrainingJob]:
        return list(JOBS)

    def job_pods(self, namespace: str, name: str) -> list[str]:
        return [f"{name}-pod"] if name in LOGS else []

    def logs(self, request: LogRequest) -> Iterator[str]:
        if len(request.pods) == 1 and request.pods[0].removesuffix("-pod") in LOGS:
            yield from LOGS[request.pods[0].removesuffix("-pod")]
            return
        yield from self.lines or fixed_lines(200, tuple(request.pods))

    def deployments(self, selector: str | None = None) -> list[ModelDeployment]:
        return [
            ModelDeployment(
                name,
                "models",
                "digits",
                version,
                2,
                2,
                2,
                2,
                DeploymentState.AVAILABLE,
                "",
                1,
                NOW - timedelta(days=2),
            )
            for name, version in (("digits", "3"), ("digits-canary", "4"))
        ]

    def subscribe(self, on_change: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        return True
