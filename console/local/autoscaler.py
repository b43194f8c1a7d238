"""The local runtime's autoscaler: the HPA controller's loop, run by the agent over its own
autoscalers (one per deployment, rows in the state).

Every sync period (the HPA's 15 s; ``FLEETDECK_AUTOSCALE_SYNC_SECONDS`` in the agent's
environment sets it) each autoscaler is evaluated with :mod:`console.autoscaling`, the HPA's
own arithmetic, on requests per second per ready replica:

- **Where the number comes from**: the gateway counts, per replica, the requests it had
  answered by that replica (``Replica.answered``); the rate of a replica is the change of its
  count since the previous evaluation over the time between them. Every request a client
  sends to a local deployment goes through the gateway, so the count is exact, costs one
  integer increment per request and needs no scrape of ``/metrics`` (which would cost an HTTP
  request per replica per period and parse the predictors' text). A replica not ready yet is
  *unready* to the arithmetic, a ready one first seen at this evaluation has no value yet
  (*missing*), a stopping one is left out: as the HPA groups pods.
- **Scaling** writes the deployment's replica count (and the decision, in one transaction);
  the fleet then starts predictors (routable only once ready) or drains and stops the last
  ones (out of the rotation first, stopped once their requests are answered), so scaling never
  fails a request.
- **Every change is a decision** with its numbers, kept in the state (the newest 20) and
  recorded as a ``SuccessfulRescale`` event of the deployment.
- A manual ``fleetdeck scale`` is taken as Kubernetes takes it with an HPA: the autoscaler
  sets the count again at its next evaluation (at once when the count is outside its bounds).

The stabilization windows and rate limits live in memory, as the controller's do: an agent
that restarts does not scale down before a whole window has passed (the HPA's
``maybeInitScaleDownStabilizationWindow``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from console.autoscaling import SCALE_UP, Evaluation, Stabilizer, evaluate, scale_down_rules
from console.local.fleet import Fleet, Key
from console.local.state import AutoscalerRow, DeploymentRow, State
from console.local.supervisor import Replica
from console.model import AutoscalerCondition, AutoscalerInfo, ScalingDecision

log = logging.getLogger(__name__)

UNIT = "req/s per replica"
FIRST_COUNT = "the replicas' request counts were taken now; the next evaluation has a rate"


def target_text(rps_per_pod: float) -> str:
    return f"{rps_per_pod:g} req/s per pod"


@dataclass
class _Sample:
    at: float
    counts: dict[str, tuple[Replica, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Status:
    """What the last evaluation found, for :meth:`Autoscalers.info`."""

    desired: int
    conditions: tuple[AutoscalerCondition, ...]
    current: str  # "24.1 req/s per pod"; "" before the first value


class Autoscalers:
    def __init__(
        self,
        state: State,
        fleet: Fleet,
        on_change: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.fleet = fleet
        self.on_change = on_change
        self.clock = clock
        self.stabilizers: dict[Key, Stabilizer] = {}
        self.samples: dict[Key, _Sample] = {}
        self.status: dict[Key, _Status] = {}

    # -- the loop ---------------------------------------------------------------------------
    def evaluate_all(self) -> None:
        """One sync: every autoscaler evaluated; one that cannot be says why in its
        conditions and the others go on."""
        now = self.clock()
        rows = {row.key: row for row in self.state.deployments()}
        present: set[Key] = set()
        for scaler in self.state.autoscalers():
            present.add(scaler.key)
            row = rows.get(scaler.key)
            if row is None:  # deleted meanwhile (the same transaction deletes both)
                continue
            try:
                self._evaluate(now, scaler, row)
            except Exception as exc:  # one bad row must not stop the others
                log.exception("autoscaler %s/%s failed", *scaler.key)
                self._cannot(scaler.key, row, "FailedComputeMetricsReplicas", str(exc))
        for gone in set(self.stabilizers) | set(self.samples) | set(self.status):
            if gone not in present:
                self.forget(gone)

    def forget(self, key: Key) -> None:
        self.stabilizers.pop(key, None)
        self.samples.pop(key, None)
        self.status.pop(key, None)

    def _cannot(self, key: Key, row: DeploymentRow, reason: str, message: str) -> None:
        condition = AutoscalerCondition("AbleToScale", "False", reason, message)
        self.status[key] = _Status(row.replicas, (condition,), "")

    def _measure(self, now: float, key: Key) -> tuple[list[float], int, int]:
        """(req/s of each ready replica with a value, unready replicas, ready ones without a
        value yet), and the counts kept for the next evaluation."""
        replicas = [r for r in self.fleet.replicas(key) if not r.stopping]
        previous = self.samples.get(key)
        self.samples[key] = _Sample(now, {r.pod: (r, r.answered) for r in replicas})
        ready: list[float] = []
        unready = missing = 0
        for replica in replicas:
            if not replica.routable:
                unready += 1
                continue
            before = previous.counts.get(replica.pod) if previous is not None else None
            if previous is None or before is None or before[0] is not replica:
                missing += 1
                continue
            elapsed = now - previous.at
            if elapsed <= 0:
                missing += 1
                continue
            ready.append(max(0, replica.answered - before[1]) / elapsed)
        return ready, unready, missing

    def _evaluate(self, now: float, scaler: AutoscalerRow, row: DeploymentRow) -> None:
        key = scaler.key
        if scaler.problem or row.problem:
            self._cannot(key, row, "FailedGetScale", scaler.problem or row.problem)
            return
        first = key not in self.samples
        ready, unready, missing = self._measure(now, key)
        stabilizer = self.stabilizers.setdefault(key, Stabilizer())
        result = evaluate(
            stabilizer,
            now,
            row.replicas,
            scaler.min_replicas,
            scaler.max_replicas,
            scaler.rps_per_pod,
            ready,
            unready=unready,
            missing=missing,
            scale_down_window=scaler.scale_down_seconds,
            unit=UNIT,
        )
        if first and not ready:  # said plainly: not a fault, a rate needs two counts
            result = replace(
                result,
                conditions=tuple(
                    replace(c, reason="FirstCount", message=FIRST_COUNT)
                    if c.reason == "FailedGetPodsMetric"
                    else c
                    for c in result.conditions
                ),
            )
        current = f"{result.metric.average:.1f} req/s per pod" if result.metric else ""
        if not current and key in self.status:  # no new value (the bounds decided): keep
            current = self.status[key].current
        self.status[key] = _Status(result.desired, result.conditions, current)
        if result.rescale:
            self._scale(now, scaler, row, result)

    def _scale(
        self, now: float, scaler: AutoscalerRow, row: DeploymentRow, result: Evaluation
    ) -> None:
        decision = ScalingDecision(time.time(), row.replicas, result.desired, result.reason)
        self.state.scale_by_autoscaler(row.namespace, row.name, result.desired, decision)
        self.stabilizers[row.key].scaled(
            now,
            row.replicas,
            result.desired,
            SCALE_UP,
            scale_down_rules(scaler.scale_down_seconds),
        )
        self.fleet.event(
            row.key,
            "SuccessfulRescale",
            f"New size: {result.desired}; reason: {result.reason}",
            f"Autoscaler/{row.name}",
        )
        log.info("autoscaler %s/%s: %s", row.namespace, row.name, result.reason)
        self.on_change()

    # -- reading ----------------------------------------------------------------------------
    def info(self, namespace: str, name: str) -> AutoscalerInfo | None:
        scaler = self.state.autoscaler(namespace, name)
        if scaler is None:
            return None
        row = self.state.deployment(namespace, name)
        status = self.status.get(scaler.key)
        pods = [r for r in self.fleet.replicas(scaler.key) if not r.stopping]
        conditions = status.conditions if status is not None else ()
        if scaler.problem:
            conditions = (
                AutoscalerCondition("AbleToScale", "False", "FailedGetScale", scaler.problem),
            )
        return AutoscalerInfo(
            name=name,
            min_replicas=scaler.min_replicas,
            max_replicas=scaler.max_replicas,
            current_replicas=len(pods),
            desired_replicas=(
                status.desired if status is not None else (row.replicas if row else None)
            ),
            targets=(target_text(scaler.rps_per_pod),),
            conditions=conditions,
            managed_by_fleetdeck=True,
            current=(status.current,) if status is not None and status.current else (),
            engine="local",
            decisions=tuple(self.state.decisions(namespace, name)),
        )
