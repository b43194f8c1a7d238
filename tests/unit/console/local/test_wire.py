"""The agent API's JSON gives back the same ``console.model`` values."""

from __future__ import annotations

from datetime import UTC, datetime

from console.local.wire import from_json, to_json
from console.model import (
    ActionResult,
    AutoscalerCondition,
    AutoscalerInfo,
    DeploymentState,
    JobPhase,
    ModelDeployment,
    PodInfo,
    ScalingDecision,
    TrainingJob,
)

WHEN = datetime(2026, 11, 26, 20, 0, 0, tzinfo=UTC)


def test_model_types_survive_the_round_trip() -> None:
    values = [
        ModelDeployment(
            "digits",
            "default",
            "digits",
            "2",
            2,
            1,
            2,
            1,
            DeploymentState.PROGRESSING,
            "rolling out",
            2,
            WHEN,
            "python -m serving",
            {"fleetdeck.io/model": "digits"},
        ),
        PodInfo("digits-2-0", "default", "Running", True, 1, "localhost", "", WHEN, 2),
        TrainingJob(
            "train-a", "default", "digits", JobPhase.RUNNING, 0, "localhost", "", WHEN, None
        ),
        ActionResult("default/digits", True, "would roll", True, ("~ version 1 -> 2",)),
        AutoscalerInfo(  # tuples of dataclasses come back as dataclasses
            "digits",
            1,
            4,
            3,
            3,
            ("10 req/s per pod",),
            (AutoscalerCondition("AbleToScale", "True", "SucceededRescale", "scaled to 3"),),
            True,
            ("24.1 req/s per pod",),
            "local",
            (ScalingDecision(1.5, 1, 3, "req/s per replica 24.1 > target 10 (x2.41): 1 -> 3"),),
        ),
    ]
    for value in values:
        assert from_json(type(value), to_json(value)) == value
