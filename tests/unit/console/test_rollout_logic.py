"""The order of ``kubectl rollout status``'s checks, on hand-made objects of the API's shape."""

from __future__ import annotations

from typing import Any

from console.backends.kubernetes.rollout import Phase, pod_problem, rollout_status


def deployment(*, generation: int = 2, observed: int = 2, desired: int = 3, **status: int) -> Any:
    counts = {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3}
    counts.update({k: v for k, v in status.items()})
    return {
        "metadata": {"name": "d", "generation": generation, "uid": "u"},
        "spec": {"replicas": desired},
        "status": {"observedGeneration": observed, **counts},
    }


def test_an_unobserved_spec_change_is_still_progressing() -> None:
    status = rollout_status(deployment(generation=3, observed=2), [], [])
    assert status.phase is Phase.PROGRESSING
    assert "spec update to be observed" in status.message


def test_counts_are_checked_in_kubectls_order() -> None:
    assert (
        "1 of 3 new replicas updated"
        in rollout_status(deployment(updatedReplicas=1), [], []).message
    )
    assert (
        "2 old replicas pending termination"
        in rollout_status(deployment(replicas=5), [], []).message
    )
    assert (
        "2 of 3 updated replicas available"
        in rollout_status(deployment(availableReplicas=2), [], []).message
    )
    assert rollout_status(deployment(), [], []).phase is Phase.COMPLETE


def test_pod_problems_name_the_reason_and_unschedulable_pods_count() -> None:
    crashing = {
        "metadata": {"name": "p1"},
        "status": {
            "initContainerStatuses": [
                {"state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}
            ]
        },
    }
    pending = {
        "metadata": {"name": "p2"},
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/5 nodes are available: 5 Insufficient nvidia.com/gpu.",
                }
            ]
        },
    }
    starting = {
        "metadata": {"name": "p3"},
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ContainerCreating"}}}]},
    }
    assert pod_problem(crashing).reason == "ImagePullBackOff"  # type: ignore[union-attr]
    assert "Insufficient nvidia.com/gpu" in pod_problem(pending).message  # type: ignore[union-attr]
    assert pod_problem(starting) is None  # still starting is not stuck
