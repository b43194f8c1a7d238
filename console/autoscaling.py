"""The HorizontalPodAutoscaler's arithmetic, backend-neutral and pure (no clock, no I/O).

Mirrors kube-controller-manager's HPA controller (``pkg/controller/podautoscaler``) for a
``Pods`` metric with an ``AverageValue`` target (req/s per pod):

- :func:`metric_replicas` is ``ReplicaCalculator.calcPlainMetricReplicas``: the usage ratio is
  the mean of the ready pods' values over the target; within the tolerance (10 %) nothing
  changes; otherwise ``ceil(ratio × ready pods)``. Pods without a value yet count as the target
  on a scale-down and as 0 on a scale-up, unready pods as 0 on a scale-up, and a rebalanced
  ratio that lands within the tolerance or flips direction keeps the current count.
- :class:`Stabilizer` is the controller's per-HPA memory with ``spec.behavior`` set
  (``normalizeDesiredReplicasWithBehaviors``): scale-up and scale-down stabilization windows
  over the recommendations (a scale-down takes the highest recommendation of the window), the
  default rate policies (up: the larger of +100 % and +4 pods per 15 s; down: -100 % per
  15 s), clamping to min/max, and the AbleToScale / ScalingLimited reasons it would set.
- :func:`desired_replicas` is the one-line formula, for a prediction next to a measurement.

The local runtime's agent scales with this; the deck and the benchmark may show what the HPA
algorithm predicts for the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from console.model import AutoscalerCondition

TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
SYNC_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period
DEFAULT_SCALE_DOWN_WINDOW = 300  # behavior.scaleDown.stabilizationWindowSeconds


class NoMetrics(Exception):
    """No ready pod has a value: the HPA sets ScalingActive False and does not scale."""


@dataclass(frozen=True)
class ScalingPolicy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """One direction of ``spec.behavior`` (``HPAScalingRules``)."""

    stabilization_seconds: int
    policies: tuple[ScalingPolicy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"


# The API server's defaults for behavior.scaleUp and behavior.scaleDown.
SCALE_UP = ScalingRules(0, (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))


def scale_down_rules(window: int | None) -> ScalingRules:
    """The default scale-down rules with the given stabilization window (None: 300 s)."""
    seconds = DEFAULT_SCALE_DOWN_WINDOW if window is None else window
    return ScalingRules(seconds, (ScalingPolicy("Percent", 100, 15),))


def desired_replicas(
    current: int, metric_per_replica: float, target: float, tolerance: float = TOLERANCE
) -> int:
    """``ceil(current × metric / target)``, or ``current`` when the ratio is within the
    tolerance (every pod ready, every pod measured)."""
    ratio = metric_per_replica / target
    if abs(1.0 - ratio) <= tolerance:
        return current
    return math.ceil(ratio * current)


@dataclass(frozen=True)
class MetricRecommendation:
    replicas: int
    ratio: float  # mean of the ready pods' values / target
    average: float  # mean of the ready pods' values


def metric_replicas(
    current: int,
    ready: Sequence[float],
    target: float,
    *,
    unready: int = 0,
    missing: int = 0,
    tolerance: float = TOLERANCE,
) -> MetricRecommendation:
    """``calcPlainMetricReplicas``: ``ready`` holds the value of each ready pod with a metric,
    ``unready`` counts pods not ready yet, ``missing`` ready pods without a value yet.
    Raises :class:`NoMetrics` when ``ready`` is empty."""
    if not ready:
        raise NoMetrics("did not receive metrics for targeted pods (pods might be unready)")
    average = sum(ready) / len(ready)
    ratio = average / target
    rebalance_unready = unready > 0 and ratio > 1.0
    if not rebalance_unready and missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return MetricRecommendation(current, ratio, average)
        return MetricRecommendation(math.ceil(ratio * len(ready)), ratio, average)
    values = list(ready)
    if missing:
        # A scale-down counts them as exactly at the target, a scale-up as idle.
        values += [target if ratio < 1.0 else 0.0] * missing
    if rebalance_unready:
        values += [0.0] * unready
    new_ratio = sum(values) / len(values) / target
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return MetricRecommendation(current, ratio, average)
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return MetricRecommendation(current, ratio, average)
    return MetricRecommendation(replicas, ratio, average)


@dataclass(frozen=True)
class Normalized:
    """What the controller makes of a metric's recommendation, with the conditions it sets."""

    replicas: int
    stabilized: int  # after the stabilization windows, before the rate limits and bounds
    able_reason: str  # AbleToScale: ReadyForNewScale | ScaleUpStabilized | ScaleDownStabilized
    able_message: str
    limited: bool  # ScalingLimited
    limited_reason: str  # DesiredWithinRange | ScaleUpLimit | TooManyReplicas | ...
    limited_message: str


@dataclass
class Stabilizer:
    """One autoscaler's memory in the controller: recent recommendations and scale events
    (times in seconds on any monotonic clock the caller keeps)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_ups: list[tuple[float, int]] = field(default_factory=list)
    scale_downs: list[tuple[float, int]] = field(default_factory=list)

    def start(self, now: float, current: int, down: ScalingRules) -> None:
        """``maybeInitScaleDownStabilizationWindow``: a controller that just met this
        autoscaler (or restarted) does not scale it down before a whole window has passed."""
        if not self.recommendations and down.stabilization_seconds > 0:
            self.recommendations.append((now, current))

    def normalize(
        self,
        now: float,
        current: int,
        recommended: int,
        minimum: int,
        maximum: int,
        up: ScalingRules = SCALE_UP,
        down: ScalingRules | None = None,
    ) -> Normalized:
        down = down or scale_down_rules(None)
        self.start(now, current, down)
        stabilized, able_reason, able_message = self._stabilize(now, current, recommended, up, down)
        if stabilized == recommended:
            able_reason, able_message = "ReadyForNewScale", "recommended size matches current size"
        replicas, limited_reason, limited_message = self._rate(
            now, current, stabilized, minimum, maximum, up, down
        )
        return Normalized(
            replicas,
            stabilized,
            able_reason,
            able_message,
            replicas != stabilized,
            limited_reason,
            limited_message,
        )

    def _stabilize(
        self, now: float, current: int, recommended: int, up: ScalingRules, down: ScalingRules
    ) -> tuple[int, str, str]:
        up_cutoff = now - up.stabilization_seconds
        down_cutoff = now - down.stabilization_seconds
        up_recommendation = down_recommendation = recommended
        for at, replicas in self.recommendations:
            if at > up_cutoff:
                up_recommendation = min(replicas, up_recommendation)
            if at > down_cutoff:
                down_recommendation = max(replicas, down_recommendation)
        stabilized = max(current, up_recommendation)
        stabilized = min(stabilized, down_recommendation)
        # Recorded unstabilized; what neither window can see any more is dropped.
        self.recommendations = [
            (at, r) for at, r in self.recommendations if at >= up_cutoff or at >= down_cutoff
        ]
        self.recommendations.append((now, recommended))
        if recommended >= current:
            return (
                stabilized,
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest "
                "recent recommendation",
            )
        return (
            stabilized,
            "ScaleDownStabilized",
            "recent recommendations were higher than current one, applying the highest "
            "recent recommendation",
        )

    def _rate(
        self,
        now: float,
        current: int,
        desired: int,
        minimum: int,
        maximum: int,
        up: ScalingRules,
        down: ScalingRules,
    ) -> tuple[int, str, str]:
        """``convertDesiredReplicasWithBehaviorRate``."""
        if desired > current:
            limit = max(self._up_limit(now, current, up), current)
            if maximum > limit:
                allowed, reason = limit, "ScaleUpLimit"
                message = (
                    "the desired replica count is increasing faster than the maximum scale rate"
                )
            else:
                allowed, reason = maximum, "TooManyReplicas"
                message = "the desired replica count is more than the maximum replica count"
            if desired > allowed:
                return allowed, reason, message
        elif desired < current:
            limit = min(self._down_limit(now, current, down), current)
            if minimum < limit:
                allowed, reason = limit, "ScaleDownLimit"
                message = (
                    "the desired replica count is decreasing faster than the maximum scale rate"
                )
            else:
                allowed, reason = minimum, "TooFewReplicas"
                message = "the desired replica count is less than the minimum replica count"
            if desired < allowed:
                return allowed, reason, message
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def _period_start(self, now: float, current: int, period: int) -> int:
        added = sum(n for at, n in self.scale_ups if at > now - period)
        removed = sum(n for at, n in self.scale_downs if at > now - period)
        return current - added + removed

    def _up_limit(self, now: float, current: int, rules: ScalingRules) -> int:
        if rules.select == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now, current, policy.period_seconds)
            if policy.kind == "Pods":
                proposals.append(start + policy.value)
            else:
                proposals.append(math.ceil(start * (1 + policy.value / 100)))
        return (min if rules.select == "Min" else max)(proposals)

    def _down_limit(self, now: float, current: int, rules: ScalingRules) -> int:
        if rules.select == "Disabled":
            return current
        proposals = []
        for policy in rules.policies:
            start = self._period_start(now, current, policy.period_seconds)
            if policy.kind == "Pods":
                proposals.append(start - policy.value)
            else:
                proposals.append(int(start * (1 - policy.value / 100)))
        return (max if rules.select == "Min" else min)(proposals)

    def scaled(
        self, now: float, before: int, after: int, up: ScalingRules, down: ScalingRules
    ) -> None:
        """``storeScaleEvent``: remember a change for the rate policies' periods."""
        longest = max((p.period_seconds for p in (*up.policies, *down.policies)), default=0)
        self.scale_ups = [(at, n) for at, n in self.scale_ups if at > now - longest]
        self.scale_downs = [(at, n) for at, n in self.scale_downs if at > now - longest]
        if after > before:
            self.scale_ups.append((now, after - before))
        elif after < before:
            self.scale_downs.append((now, before - after))


@dataclass(frozen=True)
class Evaluation:
    """One pass of the controller over one autoscaler: the replicas it sets, the conditions it
    leaves, and why (with the numbers) when the count changes."""

    current: int
    desired: int
    conditions: tuple[AutoscalerCondition, ...]
    metric: MetricRecommendation | None = None  # None: no value, or the bounds decided alone
    reason: str = ""  # "" when the count stays

    @property
    def rescale(self) -> bool:
        return self.desired != self.current


def evaluate(
    stabilizer: Stabilizer,
    now: float,
    current: int,
    minimum: int,
    maximum: int,
    target: float,
    ready: Sequence[float],
    *,
    unready: int = 0,
    missing: int = 0,
    scale_down_window: int | None = None,
    unit: str = "req/s per replica",
    tolerance: float = TOLERANCE,
) -> Evaluation:
    """``reconcileAutoscaler`` for one metric: the bounds first (a count outside them is
    brought back at once), then the metric's recommendation, stabilized and rate-limited.
    The caller applies ``desired`` and calls ``stabilizer.scaled`` when it changed."""
    down = scale_down_rules(scale_down_window)
    if current == 0:
        return Evaluation(
            current,
            current,
            (
                AutoscalerCondition(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                ),
            ),
        )
    if current > maximum or current < minimum:
        bound, word = (maximum, "above max") if current > maximum else (minimum, "below min")
        at_bound = "TooManyReplicas" if current > maximum else "TooFewReplicas"
        return Evaluation(
            current,
            bound,
            (
                AutoscalerCondition(
                    "AbleToScale", "True", "SucceededRescale", f"scaled to the bound {bound}"
                ),
                AutoscalerCondition(
                    "ScalingLimited",
                    "True",
                    at_bound,
                    f"the replica count {current} was {word} {bound}",
                ),
            ),
            reason=f"replicas {current} {word} {bound}: {current} -> {bound}",
        )
    try:
        metric = metric_replicas(
            current, ready, target, unready=unready, missing=missing, tolerance=tolerance
        )
    except NoMetrics as exc:
        return Evaluation(
            current,
            current,
            (
                AutoscalerCondition(
                    "AbleToScale",
                    "True",
                    "SucceededGetScale",
                    "the target's current scale is known",
                ),
                AutoscalerCondition("ScalingActive", "False", "FailedGetPodsMetric", str(exc)),
            ),
        )
    normalized = stabilizer.normalize(
        now, current, metric.replicas, minimum, maximum, SCALE_UP, down
    )
    desired = normalized.replicas
    active = AutoscalerCondition(
        "ScalingActive",
        "True",
        "ValidMetricFound",
        f"the autoscaler was able to calculate a replica count from {unit}",
    )
    limited = AutoscalerCondition(
        "ScalingLimited",
        "True" if normalized.limited else "False",
        normalized.limited_reason,
        normalized.limited_message,
    )
    if desired == current:
        able = AutoscalerCondition(
            "AbleToScale", "True", normalized.able_reason, normalized.able_message
        )
        return Evaluation(current, current, (able, active, limited), metric)
    able = AutoscalerCondition(
        "AbleToScale", "True", "SucceededRescale", f"scaled the target to {desired}"
    )
    sign = ">" if metric.ratio > 1.0 else "<"
    reason = (
        f"{unit} {metric.average:.1f} {sign} target {target:g} (x{metric.ratio:.2f}): "
        f"{current} -> {desired}"
    )
    notes = []
    if unready and metric.ratio > 1.0:
        notes.append(f"{unready} not ready counted as 0")
    if missing:
        notes.append(
            f"{missing} not measured yet counted as {'0' if metric.ratio > 1 else 'target'}"
        )
    if desired < current and normalized.stabilized != metric.replicas:
        notes.append(
            f"highest recommendation of the last {down.stabilization_seconds} s: "
            f"{normalized.stabilized}; the metric asks for {metric.replicas}"
        )
    if normalized.limited:
        limit = {"TooManyReplicas": f"max {maximum}", "TooFewReplicas": f"min {minimum}"}
        why = limit.get(normalized.limited_reason, normalized.limited_reason)
        notes.append(f"the metric asks for {metric.replicas}, {why}")
    if notes:
        reason += f" ({'; '.join(notes)})"
    return Evaluation(current, desired, (able, active, limited), metric, reason)
