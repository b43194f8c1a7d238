"""A batch whose cluster stops answering mid-way (kube-apiserver stopped with SIGSTOP on the
second test cluster: it accepts connections and never answers, as an overloaded or partitioned
control plane does) halts with that reason: no target is judged failed from stale rows, nothing
is undone against a cluster that cannot be reached, and a resume once it answers finishes it."""

from __future__ import annotations

import threading
from pathlib import Path

from console.backends.kubernetes.backend import KubernetesBackend
from console.batch.executor import BatchEvent, BatchExecutor, EventKind
from console.batch.journal import BatchState, Journal
from console.batch.plan import make_plan
from console.batch.runner import ActionSpec, AuditContext
from console.profile import BatchSettings, Quota
from console.profile_reader import parse_waves
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.batch.conftest import Fleet, kwok_profile

SETTINGS = BatchSettings(
    waves=parse_waves("1,100%"),
    max_parallel=2,
    halt_after=Quota(count=1),
    bake_seconds=0.0,
    on_failure="rollback-all",
)


def test_a_cluster_that_stops_answering_mid_batch_halts_it_and_resume_finishes_it(
    k8s_cluster_b: K8sCluster,
    k8s_namespace_b: str,
    audit_context: AuditContext,
    tmp_path: Path,
) -> None:
    fleet = Fleet(k8s_cluster_b, k8s_namespace_b)
    # Five replicas roll one pod at a time: the second wave takes long enough to stop it there.
    targets = fleet.create([f"digits-{i}" for i in range(6)], replicas=5)
    fleet.wait_available(6)
    profile = kwok_profile(k8s_cluster_b, k8s_namespace_b, tmp_path / "store", "kwok-admin")
    backend = KubernetesBackend(profile, user="kwok-admin", request_timeout=5.0)
    assert backend.start(), "the fleet cache did not sync"
    try:
        plan = make_plan(ActionSpec("rollout", version=2, verify=False), targets, SETTINGS)
        journal = Journal.create(plan, {"profile": "kwok", "user": "kwok-admin"}, tmp_path)
        events: list[BatchEvent] = []
        executor = BatchExecutor(
            backend, journal, audit_context=audit_context, on_event=events.append, poll_seconds=0.2
        )
        running = threading.Thread(target=executor.run, daemon=True)
        running.start()
        poll_until(
            "the second wave under way",
            lambda: any(e.kind is EventKind.WAVE_STARTED and e.wave == 1 for e in events),
        )
        with k8s_cluster_b.frozen_apiserver():
            running.join(timeout=180)  # a safety net: it halts on its own
            assert not running.is_alive(), "the batch did not halt"
            halted = journal.replay()
            assert halted.state is BatchState.HALTED
            # Said by the probe, or by a request that timed out before the probe could say it.
            assert halted.reason.startswith(
                ("the cluster has not answered since", "the cluster did not answer (")
            ), halted.reason
            assert "resume the batch once it answers" in halted.reason
            assert not halted.failed  # stale rows and refused requests are no failures
            assert not any(e.kind is EventKind.ABORTED for e in events)  # nothing undone
        poll_until("the cache live again", lambda: backend.connection().live, timeout=120)

        resumed = BatchExecutor(
            backend, Journal.open(journal.id, tmp_path), audit_context=audit_context,
            poll_seconds=0.2,
        ).run()  # fmt: skip
        assert resumed.state is BatchState.DONE, resumed.reason
        assert set(fleet.versions().values()) == {"2"}
    finally:
        backend.close()
