"""Issue 20 on the local runtime: ``fleetdeck autoscale`` makes the agent scale a deployment on
req/s per replica with the HPA's arithmetic. Load through the gateway takes it from 1 to 3 real
predictor processes and, once the load falls, back to 1, with no failed request; every decision
is an event and a decision with its numbers. Everything here is real: the agent, its gateway,
``python -m serving`` processes on a trained model, the CLI as a user runs it.

The agent evaluates its autoscalers every second here (``FLEETDECK_AUTOSCALE_SYNC_SECONDS``)
and each autoscaler has a 4 s scale-down window, so the test waits seconds, not minutes; it
never asserts on how long anything took.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
import requests

from console.backends.local import LocalBackend, LocalError
from console.local.__main__ import SYNC_ENVIRONMENT
from console.local.launch import stop_agent
from console.model import AutoscaleRequest, DeployRequest
from console.profile import Profile
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import DigitsStore, local_backend, predictor_pids
from tests.support.cli import Fleetdeck
from tests.support.gateway_load import LoadGenerator, deploy_available

NAME = "digits"
TARGET = 5.0  # req/s per replica: three client threads are far above it, a trickle below
WINDOW = "4"  # seconds of scale-down stabilization


@pytest.fixture
def backend(profile: Profile, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    """The agent, started by the backend, with a one-second autoscaler sync period."""
    monkeypatch.setenv(SYNC_ENVIRONMENT, "1")
    with local_backend(profile) as backend:
        yield backend


def local_fleetdeck() -> Fleetdeck:
    return Fleetdeck(dict(os.environ))


def deploy_one(backend: LocalBackend) -> None:
    deploy_available(backend, NAME)


def serving(backend: LocalBackend, replicas: int) -> bool:
    """``replicas`` ready replicas and no other pod (none starting, none stopping)."""
    row = backend.deployment("default", NAME)
    pods = backend.pods("default", NAME)
    return (
        row is not None
        and row.desired == replicas
        and row.ready == replicas
        and len(pods) == replicas
        and all(p.ready for p in pods)
    )


def answered(url: str) -> float:
    """The predictor's own count of answered requests (``fleetdeck_predictor_requests_total``)."""
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("fleetdeck_predictor_requests_total{")
    )


def test_load_through_the_gateway_scales_one_to_three_predictors_and_back_without_a_failure(
    profile: Profile, backend: LocalBackend, digits_store: DigitsStore
) -> None:
    fleetdeck = local_fleetdeck()
    deploy_one(backend)
    (first,) = predictor_pids(profile)

    made = fleetdeck(
        "autoscale", NAME, "--min", "1", "--max", "3", "--rps-per-pod", f"{TARGET:g}",
        "--scale-down-window", WINDOW,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert "created autoscaler: 1..3 replicas at 5 req/s per pod" in made.out
    info = backend.autoscaler("default", NAME)
    assert info is not None
    assert (info.engine, info.targets, info.min_replicas, info.max_replicas) == (
        "local",
        ("5 req/s per pod",),
        1,
        3,
    )

    # -- up: three threads without a pause are far above 5 req/s per replica ----------------
    with LoadGenerator(backend, NAME, digits_store.images, threads=3) as heavy:
        poll_until("3 ready predictors", lambda: serving(backend, 3), timeout=180)
        pids = predictor_pids(profile)
        assert len(pids) == 3
        assert first in pids
        # Each of them really answers: its own counter moves while the load goes on.
        endpoints = [url for _, url in backend.endpoints("default", NAME)]
        assert len(endpoints) == 3
        before = {url: answered(url) for url in endpoints}
        poll_until(
            "every replica answering",
            lambda: all(answered(url) > before[url] for url in endpoints),
            timeout=60,
        )
        up = backend.autoscaler("default", NAME)
        assert up is not None
        assert up.current
        assert up.current[0].endswith(" req/s per pod")
    assert heavy.sent > 0
    assert heavy.failures == []

    # -- down: a trickle (one thread, a pause between requests) keeps requests flowing while
    # the replicas drain, far below the target -------------------------------------------------
    with LoadGenerator(backend, NAME, digits_store.images, threads=1, pause=0.3) as trickle:
        poll_until("back to 1 ready predictor", lambda: serving(backend, 1), timeout=180)
        poll_until("2 predictor processes gone", lambda: len(predictor_pids(profile)) == 1, 60)
    assert trickle.sent > 0
    assert trickle.failures == []

    # -- every decision, with its numbers -----------------------------------------------------
    info = backend.autoscaler("default", NAME)
    assert info is not None
    decisions = list(reversed(info.decisions))  # oldest first
    assert decisions[0].from_replicas == 1
    assert decisions[0].to_replicas > 1
    assert decisions[0].reason.startswith("req/s per replica ")
    assert " > target 5 (x" in decisions[0].reason
    assert decisions[-1].to_replicas == 1
    assert " < target 5 (x" in decisions[-1].reason
    assert re.search(r": \d -> 1( \(|$)", decisions[-1].reason), decisions[-1].reason
    assert max(d.to_replicas for d in decisions) == 3
    assert info.desired_replicas == 1
    conditions = {c.type: c for c in info.conditions}
    assert conditions["ScalingActive"].status == "True"

    events = fleetdeck("events", NAME, "-o", "json").json()
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert rescales == [f"New size: {d.to_replicas}; reason: {d.reason}" for d in decisions]
    text = fleetdeck("describe", NAME).out
    assert "Scaling decisions:" in text
    assert decisions[0].reason in text
    assert decisions[-1].reason in text
    autoscaler_line = next(line for line in text.splitlines() if line.startswith("Autoscaler:"))
    assert "1..3 replicas at 5 req/s per pod" in autoscaler_line
    status = fleetdeck("status", NAME).out.splitlines()
    assert status[1].startswith("  autoscaler digits (local runtime): 1..3 replicas at 5 req/s")
    assert status[1].endswith(f"→ 1 ({decisions[-1].reason})")
    described = fleetdeck("describe", NAME, "-o", "json").json()
    assert described["autoscaler"]["engine"] == "local"
    assert len(described["autoscaler"]["decisions"]) == len(decisions)

    # -- a manual scale: as with an HPA, the autoscaler sets the count again -------------------
    scaled = fleetdeck("scale", NAME, "--replicas", "2", "--yes")
    assert scaled.code == 0, scaled.err
    assert "its autoscaler (1..3 replicas at 5 req/s per pod) sets the count again" in scaled.out
    poll_until(
        "the autoscaler's 2 -> 1",
        lambda: (
            (found := backend.autoscaler("default", NAME)) is not None
            and found.decisions[0].from_replicas == 2
            and found.decisions[0].to_replicas == 1
        ),
        timeout=120,
    )
    poll_until("1 ready predictor again", lambda: serving(backend, 1), timeout=120)


def test_autoscale_dry_run_bounds_hostile_input_restart_and_delete(
    profile: Profile, backend: LocalBackend
) -> None:
    fleetdeck = local_fleetdeck()
    deploy_one(backend)

    dry = fleetdeck(
        "autoscale", NAME, "--min", "1", "--max", "4", "--rps-per-pod", "12.5", "--dry-run",
        "--json",
    )  # fmt: skip
    assert dry.code == 0, dry.err
    (result,) = dry.json()
    assert result["dry_run"]
    assert result["ok"]
    assert result["message"] == "would create autoscaler: 1..4 replicas at 12.5 req/s per pod"
    assert "+ autoscaler target: 12.5 req/s per pod" in result["changes"]
    assert backend.autoscaler("default", NAME) is None  # nothing was sent for real

    # Bounds and targets refused before anything is sent (exit 2), or by the agent (exit 1).
    refused = {
        ("--min", "3", "--max", "1", "--rps-per-pod", "5"): "--max (1) must be >= --min (3)",
        ("--min", "0", "--max", "2", "--rps-per-pod", "5"): "--min must be at least 1",
        ("--min", "1", "--max", "2", "--rps-per-pod", "0"): "--rps-per-pod must be above 0",
        ("--min", "1", "--max", "2", "--rps-per-pod", "5", "--scale-down-window", "-1"): (
            "--scale-down-window must be 0..3600 seconds"
        ),
    }
    for arguments, message in refused.items():
        done = fleetdeck("autoscale", NAME, *arguments)
        assert done.code == 2, (arguments, done.out, done.err)
        assert message in done.err
    cpu = fleetdeck("autoscale", NAME, "--min", "1", "--max", "2", "--cpu", "50")
    assert cpu.code == 1
    assert "the local runtime scales on requests per second per replica" in cpu.out
    missing = fleetdeck("autoscale", "nope", "--min", "1", "--max", "2", "--rps-per-pod", "5")
    assert missing.code != 0
    assert backend.autoscaler("default", NAME) is None

    # Hostile input straight at the agent's API: refused with the rule, nothing stored.
    for request in (
        AutoscaleRequest("../../etc", 1, 2, rps_per_pod=1.0),
        AutoscaleRequest(NAME, 2, 1, rps_per_pod=1.0),
        AutoscaleRequest(NAME, 1, 2, rps_per_pod=float("nan")),
    ):
        with pytest.raises(LocalError, match="400"):
            backend.autoscale("default", request)
    with pytest.raises(LocalError, match="invalid deployment name"):
        backend.autoscaler("default", "Bad\nName")

    made = fleetdeck("autoscale", NAME, "--min", "1", "--max", "4", "--rps-per-pod", "12.5")
    assert made.code == 0, made.err
    same = fleetdeck("autoscale", NAME, "--min", "1", "--max", "4", "--rps-per-pod", "12.5")
    assert "autoscaler already 1..4 replicas at 12.5 req/s per pod" in same.out
    changed = fleetdeck(
        "autoscale", NAME, "--min", "2", "--max", "4", "--rps-per-pod", "12.5",
        "--scale-down-window", "30", "--json",
    )  # fmt: skip
    (update,) = changed.json()
    assert update["message"] == (
        "updated autoscaler: 2..4 replicas at 12.5 req/s per pod, scale-down window 30 s"
    )
    assert update["changes"] == [
        "~ autoscaler min_replicas: 1 -> 2",
        "~ autoscaler scale_down_window: 300 s (the HPA's default) -> 30 s",
        "~ replicas 1 -> 2 (the bounds, at once)",
    ]
    # Below its new min: the next evaluation brings it up, with its reason.
    poll_until(
        "the bound's 1 -> 2",
        lambda: (
            (found := backend.autoscaler("default", NAME)) is not None
            and bool(found.decisions)
            and found.decisions[0].reason == "replicas 1 below min 2: 1 -> 2"
        ),
        timeout=60,
    )

    # The autoscaler and its decisions are the agent's state: they survive a restart.
    stop_agent(profile, timeout=60)
    with local_backend(profile) as again:
        kept = again.autoscaler("default", NAME)
        assert kept is not None
        assert (kept.min_replicas, kept.max_replicas, kept.targets) == (
            2,
            4,
            ("12.5 req/s per pod",),
        )
        assert kept.decisions[0].reason == "replicas 1 below min 2: 1 -> 2"

        # Deleting the deployment deletes its autoscaler: a new one of the same name has none.
        deleted = fleetdeck("delete", NAME, "--yes")
        assert deleted.code == 0, deleted.err
        assert "- autoscaler digits" in deleted.out
        assert again.autoscaler("default", NAME) is None
        redeployed = again.deploy(DeployRequest(NAME, "digits", 1, "default", 1))
        assert redeployed.ok, redeployed.message
        assert again.autoscaler("default", NAME) is None
