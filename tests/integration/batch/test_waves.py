"""The batch engine on the KWOK cluster through the real Kubernetes backend: waves in order,
halting and rolling back a failing wave, rolling back a rollout stalled past its deadline."""

from __future__ import annotations

from pathlib import Path

from console.audit import read_audit
from console.backends.kubernetes.backend import KubernetesBackend
from console.batch.executor import BatchEvent, BatchExecutor, EventKind
from console.batch.gates import SloReading
from console.batch.journal import BatchState, Journal, Step
from console.batch.plan import SloThresholds, make_plan
from console.batch.runner import ActionSpec, AuditContext, Target
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves
from tests.infra.k8s_fixtures import poll_until
from tests.integration.batch.conftest import Fleet, MarkedRollouts

CRASH = {"fleetdeck.io/test-fail": "CrashLoopBackOff"}
IMAGE_PULL = {"fleetdeck.io/test-fail": "ImagePullBackOff"}


def settings(waves: str, **options: object) -> BatchSettings:
    defaults: dict[str, object] = {
        "max_parallel": 20,
        "halt_after": Quota(count=1),
        "bake_seconds": 0.0,
        "on_failure": "rollback-wave",
    }
    return BatchSettings(waves=parse_waves(waves), **{**defaults, **options})  # type: ignore[arg-type]


def run(
    backend: KubernetesBackend,
    targets: list[Target],
    batch: BatchSettings,
    audit_context: AuditContext,
    folder: Path,
    *,
    stuck_seconds: float = 60.0,
) -> tuple[BatchExecutor, list[BatchEvent]]:
    spec = ActionSpec("rollout", version=2, verify=False)
    plan = make_plan(spec, targets, batch, stuck_seconds=stuck_seconds)
    journal = Journal.create(plan, {"profile": "kwok", "user": "kwok-admin"}, folder)
    events: list[BatchEvent] = []
    executor = BatchExecutor(
        backend, journal, audit_context=audit_context, on_event=events.append, poll_seconds=0.2
    )
    executor.run()
    return executor, events


def test_200_deployments_roll_out_in_waves_with_progress_events_in_order(
    fleet: Fleet, backend: KubernetesBackend, audit_context: AuditContext, tmp_path: Path
) -> None:
    targets = fleet.create([f"digits-{i:03}" for i in range(200)])
    fleet.wait_available(200)
    poll_until("the cache sees all 200", lambda: len(backend.deployments()) == 200)

    executor, events = run(
        backend, targets, settings("1,10%,100%", max_parallel=25), audit_context, tmp_path
    )

    assert executor.state.state is BatchState.DONE
    assert set(fleet.versions().values()) == {"2"}
    waves = [(e.kind, e.wave) for e in events if e.kind in (EventKind.WAVE_STARTED,
                                                             EventKind.WAVE_PASSED)]  # fmt: skip
    assert waves == [
        (EventKind.WAVE_STARTED, 0), (EventKind.WAVE_PASSED, 0),
        (EventKind.WAVE_STARTED, 1), (EventKind.WAVE_PASSED, 1),
        (EventKind.WAVE_STARTED, 2), (EventKind.WAVE_PASSED, 2),
    ]  # fmt: skip
    assert [len(w) for w in executor.plan.waves] == [1, 19, 180]
    for number, wave in enumerate(executor.plan.waves):
        started = events.index(next(e for e in events if e.kind is EventKind.WAVE_STARTED
                                    and e.wave == number))  # fmt: skip
        passed = events.index(next(e for e in events if e.kind is EventKind.WAVE_PASSED
                                   and e.wave == number))  # fmt: skip
        for namespace, name in wave:
            steps = [e.step for e in events[started:passed + 1]
                     if e.target == f"{namespace}/{name}"]  # fmt: skip
            assert steps == [Step.SENT, Step.APPLIED, Step.APPLIED, Step.HEALTHY], name
    assert events[-1].kind is EventKind.DONE
    assert "200 healthy" in events[-1].message
    rollouts = [e for e in read_audit(path=audit_context.path) if e.action == "rollout"]
    assert len(rollouts) == 200
    assert all(e.parameters["batch"] == executor.journal.id for e in rollouts)


def test_a_wave_whose_pods_crash_halts_at_the_threshold_and_is_rolled_back_alone(
    fleet: Fleet, backend: KubernetesBackend, audit_context: AuditContext, tmp_path: Path
) -> None:
    targets = fleet.create([f"digits-{i:02}" for i in range(20)])
    fleet.wait_available(20)
    poll_until("the cache sees all 20", lambda: len(backend.deployments()) == 20)
    canaries, second, rest = targets[:2], targets[2:10], targets[10:]
    backend.actions = MarkedRollouts(backend, dict.fromkeys(second, CRASH))
    before = fleet.revisions()

    executor, events = run(
        backend,
        targets,
        settings("2,50%,100%", halt_after=Quota(count=3)),
        audit_context,
        tmp_path,
        stuck_seconds=2.0,
    )

    state = executor.state
    assert state.state is BatchState.HALTED
    assert "failed (halt after 3)" in state.reason
    assert "CrashLoopBackOff" in state.reason
    assert {state.targets[t].step for t in second} == {Step.ROLLED_BACK}
    assert all("CrashLoopBackOff" in state.targets[t].reason for t in state.failed)
    assert len(state.failed) >= 3
    assert {state.targets[t].step for t in canaries} == {Step.HEALTHY}
    assert {state.targets[t].step for t in rest} == {Step.PENDING}
    versions = fleet.versions()
    assert {versions[name] for _, name in canaries} == {"2"}
    assert {versions[name] for _, name in second} == {"1"}  # back where they were
    assert {versions[name] for _, name in rest} == {"1"}
    assert {fleet.revisions()[name] for _, name in rest} == {before[rest[0][1]]}  # untouched
    fleet.wait_available(20)  # the rolled-back wave serves again
    assert any(e.kind is EventKind.HALTED for e in events)
    rollbacks = [e for e in read_audit(path=audit_context.path) if e.action == "rollback"]
    assert sorted(e.targets[0] for e in rollbacks) == sorted(f"{ns}/{n}" for ns, n in second)


def test_a_rollout_stalled_past_its_progress_deadline_is_rolled_back_and_the_batch_goes_on(
    fleet: Fleet, backend: KubernetesBackend, audit_context: AuditContext, tmp_path: Path
) -> None:
    targets = fleet.create(["digits-a", "digits-b", "digits-c"], progress_deadline=8)
    fleet.wait_available(3)
    poll_until("the cache sees all 3", lambda: len(backend.deployments()) == 3)
    stalled = targets[1]
    backend.actions = MarkedRollouts(backend, {stalled: IMAGE_PULL})

    executor, _ = run(
        backend,
        targets,
        settings("100%", halt_after=Quota(count=2)),
        audit_context,
        tmp_path,
        stuck_seconds=600.0,  # only the progress deadline may fail it
    )

    state = executor.state
    assert state.state is BatchState.DONE
    assert state.failed == {stalled}
    assert "exceeded its progress deadline: ImagePullBackOff" in state.targets[stalled].reason
    assert state.targets[stalled].step is Step.ROLLED_BACK
    assert fleet.versions() == {"digits-a": "2", "digits-b": "1", "digits-c": "2"}
    journal = Journal.open(executor.journal.id, tmp_path)
    assert journal.replay().targets[stalled].step is Step.ROLLED_BACK


class ScriptedLatency:
    """An SLO source whose numbers the test sets: the executor's gate Protocol, not a metrics
    pipeline (the collector behind the same Protocol is tested in console/metrics)."""

    def __init__(self, baseline_ms: float) -> None:
        self.baseline_ms = baseline_ms
        self.now_ms: dict[Target, float] = {}

    def baseline(self, target: Target, before: float | None = None) -> SloReading | None:
        return SloReading(self.baseline_ms, 0.0)

    def reading(self, target: Target) -> SloReading | None:
        return SloReading(self.now_ms.get(target, self.baseline_ms), 0.0)


def test_a_p99_regression_during_bake_rolls_the_target_back_with_the_numbers(
    fleet: Fleet, backend: KubernetesBackend, audit_context: AuditContext, tmp_path: Path
) -> None:
    targets = fleet.create(["digits-a", "digits-b", "digits-c"])
    fleet.wait_available(3)
    poll_until("the cache sees all 3", lambda: len(backend.deployments()) == 3)
    latency = ScriptedLatency(baseline_ms=120.0)
    latency.now_ms[targets[2]] = 312.0  # the new version of digits-c is slow
    plan = make_plan(
        ActionSpec("rollout", version=2, verify=False),
        targets,
        settings("100%", halt_after=Quota(count=2), bake_seconds=1.0),
        slo=SloThresholds(p99_ratio=1.5, error_percent=1.0),
    )
    journal = Journal.create(plan, {"profile": "kwok"}, tmp_path)
    executor = BatchExecutor(
        backend, journal, audit_context=audit_context, gate=latency, gate_seconds=0.2
    )

    state = executor.run()

    assert state.state is BatchState.DONE
    assert state.failed == {targets[2]}
    assert state.targets[targets[2]].reason == "p99 312 ms > 1.5 × baseline 120 ms"
    assert state.targets[targets[2]].step is Step.ROLLED_BACK
    assert fleet.versions() == {"digits-a": "2", "digits-b": "2", "digits-c": "1"}
    failures = [e for e in read_audit(path=audit_context.path) if e.action == "batch-failure"]
    assert [e.results[0].message for e in failures] == ["p99 312 ms > 1.5 × baseline 120 ms"]
