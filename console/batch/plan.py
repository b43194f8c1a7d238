"""A batch plan: which targets, in which waves, how fast, when to stop and what to undo.

Waves are cumulative (``1,10%,100%`` of 200 targets: 1, then up to 20, then the rest: waves of
1, 19 and 180). The halt threshold counts failed targets over the whole batch (``3`` or ``5%``
of the targets, at least 1). SLO gates compare each deployment with its own numbers from just
before its wave: p99 latency may grow to ``p99_ratio`` × the baseline, the error rate may rise
by ``error_percent`` percentage points. Everything here is plain data that the journal stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from console.batch.runner import ActionSpec, Target
from console.profile import BatchSettings, Profile, Quota, SloSettings
from console.profile_reader import parse_quota, parse_waves

OnFailure = Literal["rollback-wave", "rollback-all", "pause"]
ON_FAILURE: tuple[OnFailure, ...] = ("rollback-wave", "rollback-all", "pause")
DEFAULT_P99_RATIO = 1.5
# Actions that start a rollout of the pod template: the executor waits for them to finish and
# can roll them back. The others (scale, pause, ...) are done when the server accepts them.
ROLLING_ACTIONS = frozenset({"rollout", "rollback", "restart"})


@dataclass(frozen=True)
class SloThresholds:
    """How far a deployment may move from its own pre-rollout baseline during bake."""

    p99_ratio: float | None = DEFAULT_P99_RATIO  # None: no latency gate
    error_percent: float | None = 1.0  # allowed rise in percentage points; None: no error gate

    def __post_init__(self) -> None:
        if self.p99_ratio is not None and self.p99_ratio < 1.0:
            raise ValueError("the p99 ratio must be >= 1 (1.5 allows p99 up to 1.5 × baseline)")
        if self.error_percent is not None and not 0 <= self.error_percent <= 100:
            raise ValueError("the error threshold is percentage points between 0 and 100")

    @classmethod
    def from_profile(cls, slo: SloSettings) -> SloThresholds:
        return cls(p99_ratio=DEFAULT_P99_RATIO, error_percent=slo.error_percent)


@dataclass(frozen=True)
class Plan:
    spec: ActionSpec
    targets: tuple[Target, ...]
    waves: tuple[tuple[Target, ...], ...]
    max_parallel: int
    halt_after: Quota
    bake_seconds: float
    on_failure: OnFailure
    slo: SloThresholds | None  # None: no gates (no metrics source)
    # A rollout whose new pods stay stuck (CrashLoopBackOff, ImagePullBackOff, Unschedulable)
    # this long fails without waiting for its progress deadline.
    stuck_seconds: float = 60.0
    # The longest wait for one wave's rollouts when a Deployment has no usable progress deadline.
    wait_timeout: float = 900.0
    # A rollout cluster by cluster (--wave-by cluster): the profile's cluster these targets are
    # in, and the plans of the clusters that follow once this one is done and healthy.
    cluster: str | None = None
    then: tuple[Plan, ...] = ()

    @property
    def halt_threshold(self) -> int:
        """The number of failed targets that halts the batch (at least 1)."""
        return max(1, self.halt_after.of(len(self.targets)))

    @property
    def rolling(self) -> bool:
        return self.spec.action in ROLLING_ACTIONS

    def wave_of(self, target: Target) -> int:
        for number, wave in enumerate(self.waves):
            if target in wave:
                return number
        raise KeyError(target)

    def describe(self) -> list[str]:
        """The plan in a few lines, as the CLI prints it before asking."""
        sizes = ", ".join(str(len(w)) for w in self.waves)
        gates = "none"
        if self.slo is not None:
            parts = []
            if self.slo.p99_ratio is not None:
                parts.append(f"p99 <= {self.slo.p99_ratio:g} × baseline")
            if self.slo.error_percent is not None:
                parts.append(f"errors <= baseline + {self.slo.error_percent:g} %")
            gates = ", ".join(parts) or "none"
        where = f" in cluster {self.cluster}" if self.cluster else ""
        after = (
            [f"then cluster {', then '.join(f'{p.cluster} ({len(p.targets)})' for p in self.then)}"]
            if self.then
            else []
        )
        return [
            f"{self.spec.describe()} of {len(self.targets)} deployments{where} "
            f"in {len(self.waves)} waves ({sizes})",
            f"at most {self.max_parallel} at a time; halt after {self.halt_threshold} failed"
            + (f" ({self.halt_after})" if self.halt_after.percent is not None else "")
            + f"; bake {self.bake_seconds:g} s after each wave",
            f"gates: {gates}; on failure: {self.on_failure}",
            *after,
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "waves": [[list(t) for t in wave] for wave in self.waves],
            "max_parallel": self.max_parallel,
            "halt_after": str(self.halt_after),
            "bake_seconds": self.bake_seconds,
            "on_failure": self.on_failure,
            "slo": None
            if self.slo is None
            else {"p99_ratio": self.slo.p99_ratio, "error_percent": self.slo.error_percent},
            "stuck_seconds": self.stuck_seconds,
            "wait_timeout": self.wait_timeout,
            **({"cluster": self.cluster} if self.cluster else {}),
            **({"then": [p.to_json() for p in self.then]} if self.then else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        waves = tuple(tuple((str(t[0]), str(t[1])) for t in wave) for wave in data["waves"])
        slo = data.get("slo")
        return cls(
            spec=ActionSpec.from_json(data["spec"]),
            targets=tuple(t for wave in waves for t in wave),
            waves=waves,
            max_parallel=int(data["max_parallel"]),
            halt_after=parse_quota(str(data["halt_after"])),
            bake_seconds=float(data["bake_seconds"]),
            on_failure=_on_failure(str(data["on_failure"])),
            slo=None
            if slo is None
            else SloThresholds(slo.get("p99_ratio"), slo.get("error_percent")),
            stuck_seconds=float(data.get("stuck_seconds", 60.0)),
            wait_timeout=float(data.get("wait_timeout", 900.0)),
            cluster=None if data.get("cluster") is None else str(data["cluster"]),
            then=tuple(cls.from_json(p) for p in data.get("then") or ()),
        )


def _on_failure(text: str) -> OnFailure:
    if text not in ON_FAILURE:
        raise ValueError(f"on failure: expected one of {', '.join(ON_FAILURE)}, got {text!r}")
    return text


def split_waves(
    targets: Sequence[Target], settings: BatchSettings
) -> tuple[tuple[Target, ...], ...]:
    """The targets cut into the settings' waves, in the order given."""
    waves, start = [], 0
    for size in settings.wave_sizes(len(targets)):
        waves.append(tuple(targets[start : start + size]))
        start += size
    return tuple(waves)


def make_plan(
    spec: ActionSpec,
    targets: Sequence[Target],
    settings: BatchSettings,
    *,
    slo: SloThresholds | None = None,
    stuck_seconds: float = 60.0,
    wait_timeout: float = 900.0,
) -> Plan:
    """A plan for ``targets`` (order kept: the first ones are the canaries)."""
    if not targets:
        raise ValueError("a batch needs at least one target")
    if len(set(targets)) != len(targets):
        raise ValueError("a target appears twice in the batch")
    if settings.max_parallel < 1:
        raise ValueError("--max-parallel must be at least 1")
    if settings.bake_seconds < 0:
        raise ValueError("--bake must be 0 or more seconds")
    waves = split_waves(targets, settings)
    return Plan(
        spec=spec,
        targets=tuple(targets),
        waves=waves,
        max_parallel=settings.max_parallel,
        halt_after=settings.halt_after,
        bake_seconds=settings.bake_seconds,
        on_failure=_on_failure(settings.on_failure),
        slo=slo,
        stuck_seconds=stuck_seconds,
        wait_timeout=wait_timeout,
    )


def settings_from(
    profile: Profile,
    *,
    waves: str | None = None,
    max_parallel: int | None = None,
    halt_after: str | None = None,
    bake: float | None = None,
    on_failure: str | None = None,
) -> BatchSettings:
    """The profile's batch defaults with the flags given on top (flags win)."""
    settings = profile.batch
    if waves is not None:
        settings = replace(settings, waves=parse_waves(waves))
    if max_parallel is not None:
        settings = replace(settings, max_parallel=max_parallel)
    if halt_after is not None:
        quota = parse_quota(halt_after)
        if quota.count == 0:
            raise ValueError("--halt-after: a count of at least 1 or a percentage such as 10%")
        settings = replace(settings, halt_after=quota)
    if bake is not None:
        settings = replace(settings, bake_seconds=bake)
    if on_failure is not None:
        settings = replace(settings, on_failure=_on_failure(on_failure))
    return settings


def thresholds_from(
    profile: Profile, *, p99_ratio: float | None = None, error_percent: float | None = None
) -> SloThresholds:
    """The profile's SLO thresholds with the flags on top."""
    base = SloThresholds.from_profile(profile.slo)
    return SloThresholds(
        p99_ratio=base.p99_ratio if p99_ratio is None else p99_ratio,
        error_percent=base.error_percent if error_percent is None else error_percent,
    )
