"""Backend-neutral types: what the CLI, the batch engine and the TUI see of a fleet.

Both backends (Kubernetes, the local runtime) translate their objects into these, so nothing
above the backends knows which one it talks to.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class DeploymentState(enum.StrEnum):
    AVAILABLE = "Available"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"  # serving, but fewer ready replicas than desired
    FAILED = "Failed"  # the rollout will not finish by itself (reason says why)
    PAUSED = "Paused"


@dataclass(frozen=True)
class ModelDeployment:
    """One predictor Deployment: a row of the Fleet screen, an entry of ``fleetdeck ls``."""

    name: str
    namespace: str
    model: str
    version: str
    desired: int
    ready: int
    updated: int
    available: int
    state: DeploymentState
    reason: str  # why Progressing/Degraded/Failed, "" when Available
    revision: int | None
    created: datetime | None
    image: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    # The profile's cluster it runs in, set where a session reads several ("" elsewhere).
    cluster: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """Its identity within its cluster."""
        return (self.namespace, self.name)


@dataclass(frozen=True)
class RevisionInfo:
    number: int
    change_cause: str
    model: str
    model_version: str
    images: tuple[str, ...]
    replicas: int
    # When it became the newest revision, as well as the backend knows: the time fleetdeck
    # stamped on its own changes, else when Kubernetes made its ReplicaSet. ``approximate``
    # when neither says (a ReplicaSet another client re-used, as ``kubectl rollout undo`` does).
    created: datetime | None = None
    approximate: bool = False
    via_fleetdeck: bool = True  # False: made by another client (kubectl, a CD tool)


# Container waiting reasons (as a PodInfo's reason starts) that mean a rollout will not progress
# on its own; Kubernetes names them, and the local runtime reports CrashLoopBackOff likewise.
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class PodInfo:
    name: str
    namespace: str
    phase: str
    ready: bool
    restarts: int
    node: str
    reason: str  # a waiting/termination/scheduling reason, "" when healthy
    created: datetime | None
    revision: int | None = None


@dataclass(frozen=True)
class EventInfo:
    time: datetime | None
    kind: str  # Normal | Warning
    reason: str
    object: str  # e.g. "Pod/digits-7d9f-abcde"
    message: str
    count: int = 1


class JobPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True)
class TrainingJob:
    name: str
    namespace: str
    model: str
    phase: JobPhase
    gpus: int
    node: str
    pending_reason: str  # the scheduler's message while Pending
    started: datetime | None
    finished: datetime | None
    sweep: str | None = None
    trial: int | None = None
    kind: str = "train"  # "train" (python -m training) | "score" (python -m training.score)
    cluster: str = ""  # as ModelDeployment.cluster


@dataclass(frozen=True)
class DeployRequest:
    name: str
    model: str
    version: int
    namespace: str | None = None  # None: the profile's first namespace
    replicas: int | None = None  # None: the profile's default
    gpus: int = 0


@dataclass(frozen=True)
class TrainingRequest:
    model: str
    data: str
    namespace: str | None = None
    gpus: int | None = None  # None: the profile's default
    epochs: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)  # non-empty: a sweep


@dataclass(frozen=True)
class ScoringRequest:
    """A batch scoring job: precompute ``model`` version ``version``'s outputs for the keyed
    inputs at ``input`` and publish them as that version's precomputed table."""

    model: str
    version: int
    input: str  # keyed inputs: a folder, file:// or hdfs:// data set
    namespace: str | None = None  # None: the profile's first namespace
    batch_size: int | None = None  # None: the scoring job's default


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one mutation on one target, as the CLI prints it and the audit log keeps
    it."""

    target: str
    ok: bool
    message: str
    dry_run: bool = False
    changes: tuple[str, ...] = ()  # what changed (or would change, in a dry run)
    # The cluster did not answer (refused, timed out): nothing is known of the target itself,
    # and the change may or may not have been made.
    unanswered: bool = False


@dataclass(frozen=True)
class AutoscaleRequest:
    """A deployment's autoscaler: replicas between the bounds, at one target."""

    name: str
    min_replicas: int
    max_replicas: int
    cpu_percent: int | None = None  # exactly one of these two
    rps_per_pod: float | None = None
    # How long a lower recommendation must hold before replicas go down (the HPA's
    # scale-down stabilization window); None keeps the engine's default (300 s).
    scale_down_seconds: int | None = None

    def problems(self) -> list[str]:
        found = []
        if self.min_replicas < 1:
            found.append(f"--min must be at least 1 (got {self.min_replicas})")
        if self.max_replicas < self.min_replicas:
            found.append(f"--max ({self.max_replicas}) must be >= --min ({self.min_replicas})")
        if (self.cpu_percent is None) == (self.rps_per_pod is None):
            found.append("give exactly one target: --cpu PERCENT or --rps-per-pod N")
        if self.cpu_percent is not None and self.cpu_percent < 1:
            found.append(f"--cpu must be a percentage above 0 (got {self.cpu_percent})")
        if self.rps_per_pod is not None and not self.rps_per_pod > 0:
            found.append(f"--rps-per-pod must be above 0 (got {self.rps_per_pod:g})")
        if self.scale_down_seconds is not None and not 0 <= self.scale_down_seconds <= 3600:
            found.append(
                f"--scale-down-window must be 0..3600 seconds (got {self.scale_down_seconds})"
            )
        return found

    def describe(self) -> str:
        if self.cpu_percent is not None:
            target = f"{self.cpu_percent}% CPU"
        else:
            target = f"{self.rps_per_pod:g} req/s per pod"
        return f"{self.min_replicas}..{self.max_replicas} replicas at {target}"


@dataclass(frozen=True)
class AutoscalerCondition:
    type: str  # AbleToScale | ScalingActive | ScalingLimited
    status: str  # True | False | Unknown
    reason: str
    message: str


@dataclass(frozen=True)
class GpuCapacity:
    """A cluster's GPUs: its nodes' allocatable ``nvidia.com/gpu``, and how many the running
    jobs the session sees hold (jobs in namespaces it does not watch are not counted)."""

    total: int
    nodes: int  # nodes with at least one GPU
    held: int

    def describe(self) -> str:
        if not self.total:
            return "no GPU nodes"
        return f"{self.held}/{self.total} GPUs held by running jobs ({self.nodes} GPU nodes)"


@dataclass(frozen=True)
class ScalingDecision:
    """One change of replicas an autoscaler made, with the numbers behind it."""

    at: float  # epoch seconds
    from_replicas: int
    to_replicas: int
    # Why, with its numbers: "req/s per replica 24.1 > target 10 (x2.41): 1 -> 3".
    reason: str


@dataclass(frozen=True)
class AutoscalerInfo:
    """What the Deployment screen shows of a deployment's autoscaler."""

    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int | None
    desired_replicas: int | None
    targets: tuple[str, ...]  # "60% CPU", "12.5 req/s per pod"
    conditions: tuple[AutoscalerCondition, ...]
    managed_by_fleetdeck: bool
    # The metric now, in the targets' order and words: "31.2 req/s per pod", "45% CPU";
    # empty while the engine has no number yet.
    current: tuple[str, ...] = ()
    # Which engine scales it: "hpa" (the HPA controller, with metrics-server or a
    # custom-metrics adapter), "keda" (a ScaledObject owning the HPA) or "local".
    engine: str = "hpa"
    decisions: tuple[ScalingDecision, ...] = ()  # newest first
