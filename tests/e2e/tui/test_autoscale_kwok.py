"""Issue 20 in the deck, on the test cluster: while load at the real predictors behind a
Deployment's KWOK pods makes KEDA's HorizontalPodAutoscaler scale it from 1 to 3 and back, the
Deployment screen's Metrics tab shows the autoscaler (the engine, the bounds, the target, the
metric now, current and desired) and its scaling decisions with the HPA controller's reasons,
and the req/s plot's "replicas" line reaches the new count.

The cluster twin of ``test_autoscale_local.py``. Everything is real and set up as a user would:
a profile with ``[autoscaling] engine = "keda"`` and a ``[metrics] prometheus_url`` (the
Prometheus KEDA's trigger reads is the deck's metrics source too, so the replicas plotted are
the pods whose predictors Prometheus scrapes), the autoscaler made with ``fleetdeck autoscale``,
metrics-server and KEDA running beside the cluster, the HPA controller in
kube-controller-manager deciding. KWOK pods run no containers: ``PodPredictors`` starts a real
predictor for every pod that runs (the new ones too) and registers it with Prometheus. The test
waits on what the deck shows, never on how long it took."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.backend import KubernetesBackend
from console.metrics.factory import collector_for
from console.model import DeployRequest
from console.profile import Profile, load_profile
from console.tui.app import DeckApp
from console.tui.screens.deployment import DeploymentScreen
from tests.e2e.tui.deck_pilot import run, shown_names, wait_for
from tests.e2e.tui.test_autoscale_local import most_replicas_plotted, newest_decision
from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.integration.autoscaling.conftest import pod_predictor
from tests.support.autoscaling import (
    DiscoveringPrometheus,
    LoadDriver,
    PodPredictors,
    hpa_desired_replicas,
    running_pipeline,
    running_prometheus,
)
from tests.support.cli import Fleetdeck, Result
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

__all__ = ["pod_predictor"]

NAME = "digits"
PROFILE = "keda-deck"
PER_POD = 6.0  # --rps-per-pod
LOAD = 15.0  # predictions per second in all: 2.5 pods' worth, half-way between two counts
MAX_REPLICAS = 4
SCALE_DOWN_WINDOW_S = 10


# The pipeline and Prometheus for this module only (the same helpers as the autoscaling
# tests' package fixtures): they cost CPU the rest of the deck's tests should not pay.
@pytest.fixture(scope="module")
def autoscaling_pipeline(k8s_cluster: K8sCluster) -> Iterator[AutoscalingPipeline]:
    yield from running_pipeline(k8s_cluster)


@pytest.fixture(scope="module")
def autoscaling_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DiscoveringPrometheus]:
    yield from running_prometheus(tmp_path_factory.mktemp("prometheus"))


def write_profile(
    home: Path, k8s: K8sCluster, namespace: str, prometheus_url: str, store: Path
) -> None:
    """A user's profile: KEDA scales on the predictors' request rate read from the Prometheus
    that the deck reads its metrics from."""
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / f"{PROFILE}.toml").write_text(
        'backend = "kubernetes"\n'
        f'[kubernetes]\nkubeconfig = "{k8s.kubeconfig}"\ncontext = "kwok-admin"\n'
        f'namespaces = ["{namespace}"]\n'
        f'[store]\nroot = "{store}"\n'
        f'[metrics]\nprometheus_url = "{prometheus_url}"\n'
        "window_seconds = 5\ninterval_seconds = 0.5\n"
        '[autoscaling]\nengine = "keda"\nrate_window = "30s"\npolling_seconds = 5\n'
    )


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


def decision_lines(text: str) -> list[str]:
    """The decisions the Metrics tab lists, newest first."""
    lines = text.splitlines()
    if "  last scaling decisions:" not in lines:
        return []
    after = lines[lines.index("  last scaling decisions:") + 1 :]
    return [line for line in after if line.startswith("    ")]


def test_the_metrics_tab_shows_kedas_autoscaler_its_decisions_and_the_new_replicas(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    autoscaling_pipeline: AutoscalingPipeline,
    autoscaling_prometheus: DiscoveringPrometheus,
    pod_predictor: Callable[[], PredictorProcess],
    tiny_model: TinyModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespace, prometheus = k8s_namespace, autoscaling_prometheus
    home = tmp_path / "home"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    write_profile(home, k8s_cluster, namespace, prometheus.url, tiny_model.store_root)
    fleetdeck = Fleetdeck({**os.environ, "FLEETDECK_PROFILE": PROFILE})
    profile: Profile = load_profile(PROFILE)

    # The Deployment, made by fleetdeck (the bundled kwok profile's template), at 1 replica.
    deployer = KubernetesBackend(
        load_profile("kwok"), api_client=k8s_cluster.api_client(), namespaces=[namespace]
    )
    made = deployer.actions.deploy(
        DeployRequest(NAME, tiny_model.name, 1, replicas=1), namespace, verify=False
    )
    assert made.ok, made.message
    expected = hpa_desired_replicas(1, LOAD, PER_POD)  # an AverageValue: ceil(total / target)
    assert expected == 3

    backend = KubernetesBackend(
        profile, api_client=k8s_cluster.api_client(), namespaces=[namespace], user="alice"
    )
    assert backend.start()
    collector = collector_for(profile, backend)  # the profile's Prometheus
    found: dict[str, Any] = {}
    body = {"instances": [tiny_model.images[0].tolist()]}
    try:
        with PodPredictors(k8s_cluster, namespace, NAME, pod_predictor, prometheus) as predictors:
            poll_until(
                "Prometheus to scrape the first pod's predictor",
                lambda: len(prometheus.scraped_pods(namespace, NAME)) == 1,
                120,
            )
            args = ["autoscale", NAME, "--min", "1", "--max", str(MAX_REPLICAS)]
            args += ["--rps-per-pod", f"{PER_POD:g}"]
            args += ["--scale-down-window", str(SCALE_DOWN_WINDOW_S)]
            ok(fleetdeck(*args))
            collector.start()

            async def scenario() -> None:
                app = DeckApp(
                    backend,
                    profile,
                    context="kwok-admin",
                    user="alice",
                    audit_path=tmp_path / "audit.jsonl",
                    metrics=collector,
                )
                async with app.run_test(size=(140, 45)) as pilot:
                    await wait_for(pilot, "the row", lambda: shown_names(app) == [NAME])
                    await pilot.press("enter", "5")
                    screen = app.screen
                    assert isinstance(screen, DeploymentScreen)
                    found["idle"] = await wait_for(
                        pilot,
                        "KEDA's autoscaler with the metric it reads",
                        lambda: "now " in screen.autoscaler_text and screen.autoscaler_text,
                        within=180,
                    )
                    with LoadDriver(predictors.endpoints, tiny_model.name, body, LOAD) as load:
                        await wait_for(
                            pilot,
                            f"a scale-up to {expected} on the Metrics tab",
                            lambda: any(
                                f" → {expected}  " in line
                                for line in decision_lines(screen.autoscaler_text)
                            ),
                            within=240,
                        )
                        found["up"] = screen.autoscaler_text
                        await wait_for(
                            pilot,
                            f"{expected} replicas plotted beside the req/s",
                            lambda: most_replicas_plotted(screen) == expected,
                            within=120,
                        )
                        found["settled"] = await wait_for(
                            pilot,
                            f"the autoscaler at {expected} with every pod measured",
                            lambda: (
                                f"current {expected}, desired {expected})" in screen.autoscaler_text
                                and screen.autoscaler_text
                            ),
                            within=120,
                        )
                        found["plotted"] = most_replicas_plotted(screen)
                    found["failures"], found["answered"] = list(load.failures), load.answered
                    found["down"] = await wait_for(
                        pilot,
                        "the scale-down to 1 on the Metrics tab",
                        lambda: (
                            " → 1  " in newest_decision(screen.autoscaler_text)
                            and screen.autoscaler_text
                        ),
                        within=240,
                    )

            run(scenario)
            found["served"] = set(predictors.served)
            found["problems"] = list(predictors.problems)
    finally:
        collector.stop()
        backend.cache.stop()

    summary = f"{NAME} (KEDA ScaledObject): 1..{MAX_REPLICAS} replicas at 6 req/s per pod (now "
    idle = found["idle"]
    assert idle.startswith(f"autoscaler {summary}"), idle
    assert "req/s per pod, current 1, desired 1)" in idle.splitlines()[0]
    assert "ScaledObjectReady True" in idle

    up = decision_lines(found["up"])
    [reached] = [line for line in up if f" → {expected}  " in line]
    assert reached.endswith(" → 3  external metric s0-prometheus above target"), reached
    settled = found["settled"].splitlines()[0]
    assert settled.startswith(f"autoscaler {summary}")
    assert settled.endswith(f" req/s per pod, current {expected}, desired {expected})")
    # Nothing beyond the count the HPA's arithmetic gives for the load.
    assert not any(f" → {n}  " in line for line in up for n in range(4, MAX_REPLICAS + 1))
    assert found["plotted"] == expected
    assert found["failures"] == [], found["failures"][:10]
    assert found["answered"] > 0
    assert len(found["served"]) >= expected  # every new pod had a real predictor
    assert found["problems"] == []

    newest = newest_decision(found["down"])
    assert " → 1  " in newest, newest  # from 3, or from 2 as the rate's window empties
    assert "below target" in newest
