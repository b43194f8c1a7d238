"""``fleetdeck autoscale`` makes the objects of the engine the profile names, on the real test
cluster, and reads them back.

With ``[autoscaling] engine = "keda"`` it makes a KEDA ScaledObject whose Prometheus trigger
reads the predictors' request rate from the tests' Prometheus; KEDA makes the HPA, and load at
the real predictors behind the pods makes the HPA controller scale the Deployment to the count
its arithmetic predicts. ``fleetdeck describe`` then shows the replicas, the metric and the
decision. A dry run sends nothing, someone else's ScaledObject is refused and left alone, a
change of engine removes fleetdeck's object of the other engine, and a cluster without KEDA
says so (cluster ``b``: the pipeline, and KEDA's CRDs, run beside the first cluster only).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeployRequest
from console.profile import load_profile
from tests.infra.k8s.autoscaling import AutoscalingPipeline
from tests.infra.k8s.layout import KWOK_ASSETS
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.infra.require import missing_infra
from tests.support.autoscaling import (
    DiscoveringPrometheus,
    LoadDriver,
    PodPredictors,
    hpa_desired_replicas,
)
from tests.support.cli import Fleetdeck, Result
from tests.support.models import TinyModel
from tests.support.predictor import PredictorProcess

NAME = "digits"
KEDA = ("keda.sh", "v1alpha1")
PER_POD = 6.0  # --rps-per-pod
LOAD = 15.0  # predictions per second in all: 2.5 pods' worth, half-way between two counts
MAX_REPLICAS = 4
SCALE_DOWN_WINDOW_S = 10
# A Prometheus nobody answers at: for the tests where KEDA's trigger never has to read.
NOWHERE = "http://127.0.0.1:9"


def write_profile(
    home: Path,
    name: str,
    k8s: K8sCluster,
    namespace: str,
    engine: str,
    prometheus_url: str = NOWHERE,
) -> None:
    profiles = home / "config" / "fleetdeck" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    autoscaling = f'[autoscaling]\nengine = "{engine}"\n'
    if engine == "keda":
        autoscaling += f'prometheus_url = "{prometheus_url}"\nrate_window = "30s"\n'
        autoscaling += "polling_seconds = 5\n"
    (profiles / f"{name}.toml").write_text(
        'backend = "kubernetes"\n'
        f'[kubernetes]\nkubeconfig = "{k8s.kubeconfig}"\ncontext = "kwok-admin"\n'
        f'namespaces = ["{namespace}"]\n'
        '[store]\nroot = "/nonexistent"\n' + autoscaling
    )


def cli(home: Path, profile: str) -> Fleetdeck:
    import os

    return Fleetdeck(
        {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": profile,
        }
    )


def deploy(k8s: K8sCluster, namespace: str, replicas: int = 1) -> None:
    backend = KubernetesBackend(
        load_profile("kwok"), api_client=k8s.api_client(), namespaces=[namespace]
    )
    result = backend.actions.deploy(
        DeployRequest(NAME, NAME, 1, replicas=replicas), namespace, verify=False
    )
    assert result.ok, result.message


def read_scaled_object(k8s: K8sCluster, namespace: str, name: str = NAME) -> Any:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom: Any = client.CustomObjectsApi(k8s.api_client())
    try:
        return custom.get_namespaced_custom_object(*KEDA, namespace, "scaledobjects", name)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read_hpa(k8s: K8sCluster, namespace: str, name: str) -> Any:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.AutoscalingV2Api(k8s.api_client())
    try:
        return json.loads(
            api.read_namespaced_horizontal_pod_autoscaler(
                name, namespace, _preload_content=False
            ).data
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def ok(result: Result) -> Result:
    assert result.code == 0, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


@pytest.fixture(scope="module")
def keda_rbac(k8s_cluster: K8sCluster) -> None:
    """The test users' rules on KEDA's objects (rbac.yaml; a cluster made before they were
    added has them from here on)."""
    k8s_cluster.kubectl("apply", "-f", str(KWOK_ASSETS / "rbac.yaml"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_keda_profile_scales_on_requests_per_second_and_describe_shows_the_decision(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    autoscaling_pipeline: AutoscalingPipeline,
    autoscaling_prometheus: DiscoveringPrometheus,
    pod_predictor: Callable[[], PredictorProcess],
    tiny_model: TinyModel,
    keda_rbac: None,
    home: Path,
) -> None:
    namespace, prometheus = k8s_namespace, autoscaling_prometheus
    write_profile(home, "keda", k8s_cluster, namespace, "keda", prometheus.url)
    fleetdeck = cli(home, "keda")
    deploy(k8s_cluster, namespace)
    args = ["autoscale", NAME, "--min", "1", "--max", str(MAX_REPLICAS)]
    args += ["--rps-per-pod", f"{PER_POD:g}", "--scale-down-window", str(SCALE_DOWN_WINDOW_S)]
    engine = f"(engine keda: ScaledObject {NAME})"

    dry = ok(fleetdeck(*args, "--dry-run"))
    assert f"would create autoscaler: 1..4 replicas at 6 req/s per pod {engine}" in dry.out
    assert read_scaled_object(k8s_cluster, namespace) is None  # a dry run stores nothing

    made = ok(fleetdeck(*args))
    assert f"created autoscaler: 1..4 replicas at 6 req/s per pod {engine}" in made.out
    scaled = read_scaled_object(k8s_cluster, namespace)
    assert scaled["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "fleetdeck"
    assert "via fleetdeck" in scaled["metadata"]["annotations"]["kubernetes.io/change-cause"]
    spec = scaled["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["pollingInterval"]) == (1, 4, 5)
    assert spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"] == {
        "scaleDown": {"stabilizationWindowSeconds": SCALE_DOWN_WINDOW_S}
    }
    [trigger] = spec["triggers"]
    assert (trigger["type"], trigger["metricType"]) == ("prometheus", "AverageValue")
    assert trigger["metadata"] == {
        "serverAddress": prometheus.url,
        "threshold": "6",
        "query": "sum(rate(fleetdeck_predictor_requests_total{"
        f'namespace="{namespace}",app_kubernetes_io_name="{NAME}",protocol=~"v1|v2"'
        "}[30s]))",
    }
    again = ok(fleetdeck(*args))
    assert "autoscaler already 1..4 replicas at 6 req/s per pod" in again.out

    from kubernetes import client

    apps: Any = client.AppsV1Api(k8s_cluster.api_client())
    hpa_name = f"keda-hpa-{NAME}"
    keda_hpa = poll_until(
        "KEDA to make its HorizontalPodAutoscaler",
        lambda: read_hpa(k8s_cluster, namespace, hpa_name),
        120,
    )
    assert keda_hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 10
    seen: list[int] = []

    def replicas() -> int:
        count = int(apps.read_namespaced_deployment(NAME, namespace).spec.replicas)
        seen.append(count)
        return count

    expected = hpa_desired_replicas(1, LOAD, PER_POD)  # an AverageValue: ceil(total / target)
    assert expected == 3
    with PodPredictors(k8s_cluster, namespace, NAME, pod_predictor, prometheus) as predictors:
        poll_until(
            "Prometheus to scrape the first pod's predictor",
            lambda: len(prometheus.scraped_pods(namespace, NAME)) == 1,
            120,
        )
        body = {"instances": [tiny_model.images[0].tolist()]}
        with LoadDriver(predictors.endpoints, tiny_model.name, body, LOAD) as load:
            poll_until(f"{NAME} scaled up to {expected}", lambda: replicas() == expected, 240)

            def settled() -> dict[str, Any] | None:
                # The autoscaler's look with every pod in: still the same count.
                found = ok(fleetdeck("describe", NAME, "-o", "json")).json()["autoscaler"]
                if found["current_replicas"] != expected or not found["current"]:
                    return None
                if len(prometheus.scraped_pods(namespace, NAME)) != expected:
                    return None
                return dict(found)

            shown = poll_until("describe to show the scaled autoscaler", settled, 120)
            assert replicas() == expected
        assert load.failures == [], load.failures[:10]
        assert load.answered > 0
        assert max(seen) == expected, f"replicas seen: {sorted(set(seen))}"

        assert (shown["engine"], shown["name"], shown["managed_by_fleetdeck"]) == (
            "keda",
            NAME,
            True,
        )
        assert (shown["min_replicas"], shown["max_replicas"]) == (1, MAX_REPLICAS)
        assert (shown["current_replicas"], shown["desired_replicas"]) == (expected, expected)
        assert shown["targets"] == ["6 req/s per pod"]
        [now] = shown["current"]
        assert now.endswith(" req/s per pod")
        assert float(now.split()[0]) == pytest.approx(LOAD / expected, rel=0.5)
        conditions = {c["type"]: c["status"] for c in shown["conditions"]}
        assert conditions["ScaledObjectReady"] == "True"
        assert conditions["AbleToScale"] == "True"
        # The newest decision: up to the count, from the one before (? for the first, 0).
        up, *before_up = shown["decisions"]
        assert up["to_replicas"] == expected
        assert up["from_replicas"] == (before_up[0]["to_replicas"] if before_up else 0)
        assert up["reason"] == "external metric s0-prometheus above target"
        text = ok(fleetdeck("describe", NAME)).out
        [line] = [line for line in text.splitlines() if line.startswith("Autoscaler:")]
        assert "1..4 replicas at 6 req/s per pod" in line

        # The load stopped: down to the minimum after the short window.
        poll_until(f"{NAME} scaled back down to 1", lambda: replicas() == 1, 240)
        assert predictors.problems == [], predictors.problems

    def scaled_down() -> list[dict[str, Any]] | None:
        found = ok(fleetdeck("describe", NAME, "-o", "json")).json()["autoscaler"]["decisions"]
        return found if found and found[0]["to_replicas"] == 1 else None

    # Down as the rate's window empties: in one step or several (3 -> 2 -> 1), each decision
    # from the one before.
    down, *older = poll_until("the scale-down decision", scaled_down, 60)
    assert down["from_replicas"] == older[0]["to_replicas"] > 1
    assert "below target" in down["reason"]
    assert expected in [d["to_replicas"] for d in older]
    # The viewer reads it too (rbac.yaml lets every user read KEDA's objects).
    viewer = ok(fleetdeck("--context", "kwok-viewer", "describe", NAME, "-o", "json")).json()
    assert viewer["autoscaler"]["engine"] == "keda"


def test_someone_elses_scaled_object_is_refused_and_left_as_it_is(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    autoscaling_pipeline: AutoscalingPipeline,
    keda_rbac: None,
    home: Path,
) -> None:
    from kubernetes import client

    namespace = k8s_namespace
    write_profile(home, "keda", k8s_cluster, namespace, "keda")
    fleetdeck = cli(home, "keda")
    deploy(k8s_cluster, namespace)
    custom: Any = client.CustomObjectsApi(k8s_cluster.api_client())
    theirs = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": NAME, "labels": {"team": "search"}},
        "spec": {
            "scaleTargetRef": {"name": NAME},
            "minReplicaCount": 2,
            "maxReplicaCount": 3,
            "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "80"}}],
        },
    }
    custom.create_namespaced_custom_object(*KEDA, namespace, "scaledobjects", theirs)
    before = read_scaled_object(k8s_cluster, namespace)
    for extra in ((), ("--dry-run",)):
        refused = fleetdeck("autoscale", NAME, "--min", "1", "--max", "4", "--cpu", "50", *extra)
        assert refused.code == 1, refused.out
        assert "a KEDA ScaledObject digits exists that fleetdeck did not make" in refused.out
        assert "left unchanged" in refused.out
    after = read_scaled_object(k8s_cluster, namespace)
    # KEDA's operator writes its status, a label and a finalizer; nobody else changed it.
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]
    assert "app.kubernetes.io/managed-by" not in after["metadata"]["labels"]
    assert "annotations" not in after["metadata"]
    # The HPA engine does not make a second autoscaler beside it either.
    write_profile(home, "hpa", k8s_cluster, namespace, "hpa")
    beside = cli(home, "hpa")("autoscale", NAME, "--min", "1", "--max", "4", "--cpu", "50")
    assert beside.code == 1, beside.out
    assert "a KEDA ScaledObject digits exists that fleetdeck did not make" in beside.out
    assert read_hpa(k8s_cluster, namespace, NAME) is None

    # RBAC is asked for the engine's object: oncall may not create ScaledObjects.
    oncall = fleetdeck(
        "--context", "kwok-oncall", "autoscale", NAME, "--min", "1", "--max", "2", "--cpu", "50"
    )
    assert oncall.code == 1
    assert "forbidden: user 'oncall' may not create scaledobjects" in oncall.err
    audit = ok(fleetdeck("audit", "--json")).json()
    refusals = [e for e in audit if e["action"] == "autoscale" and not e["dry_run"]]
    assert refusals  # the attempts are in the audit log


def test_a_change_of_engine_removes_fleetdecks_object_of_the_other_engine(
    k8s_cluster: K8sCluster,
    k8s_namespace: str,
    autoscaling_pipeline: AutoscalingPipeline,
    home: Path,
) -> None:
    namespace = k8s_namespace
    write_profile(home, "hpa", k8s_cluster, namespace, "hpa")
    write_profile(home, "keda", k8s_cluster, namespace, "keda")
    hpa, keda = cli(home, "hpa"), cli(home, "keda")
    deploy(k8s_cluster, namespace)
    args = ("autoscale", NAME, "--min", "1", "--max", "3", "--cpu", "60")

    made = ok(hpa(*args, "--scale-down-window", "30"))
    assert "created autoscaler: 1..3 replicas at 60% CPU (engine hpa: " in made.out
    plain = read_hpa(k8s_cluster, namespace, NAME)
    assert plain["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 30
    # The window left out: the field goes, the controller's default (300 s) applies again.
    again = ok(hpa(*args))
    assert "spec.behavior" in again.out
    assert "behavior" not in read_hpa(k8s_cluster, namespace, NAME)["spec"]

    dry = ok(keda(*args, "--dry-run"))
    assert (
        "would create autoscaler: 1..3 replicas at 60% CPU (engine keda: ScaledObject digits); "
        "would remove fleetdeck's HorizontalPodAutoscaler digits so that two autoscalers do "
        "not fight over digits"
    ) in dry.out
    assert read_hpa(k8s_cluster, namespace, NAME) is not None
    assert read_scaled_object(k8s_cluster, namespace) is None

    switched = ok(keda(*args, "--json")).json()
    assert switched[0]["message"].endswith(
        "removed fleetdeck's HorizontalPodAutoscaler digits so that two autoscalers do not "
        "fight over digits"
    )
    assert (
        "- HorizontalPodAutoscaler/digits (fleetdeck's, the other engine's)"
        in (switched[0]["changes"])
    )
    assert read_hpa(k8s_cluster, namespace, NAME) is None
    scaled = read_scaled_object(k8s_cluster, namespace)
    assert scaled["spec"]["triggers"] == [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}
    ]
    poll_until(
        "KEDA to make its HorizontalPodAutoscaler",
        lambda: read_hpa(k8s_cluster, namespace, f"keda-hpa-{NAME}"),
        120,
    )
    described = ok(keda("describe", NAME, "-o", "json")).json()["autoscaler"]
    assert (described["engine"], described["targets"]) == ("keda", ["60% CPU"])
    # The hpa profile reads the ScaledObject too (an autoscaler made before the change).
    assert ok(hpa("describe", NAME, "-o", "json")).json()["autoscaler"]["engine"] == "keda"

    back = ok(hpa(*args))
    assert "created autoscaler: 1..3 replicas at 60% CPU (engine hpa: " in back.out
    assert "removed fleetdeck's KEDA ScaledObject digits" in back.out
    assert read_hpa(k8s_cluster, namespace, NAME) is not None
    # KEDA's finalizer removes its own HPA with the ScaledObject.
    poll_until(
        "the ScaledObject and KEDA's HPA to go",
        lambda: (
            read_scaled_object(k8s_cluster, namespace) is None
            and read_hpa(k8s_cluster, namespace, f"keda-hpa-{NAME}") is None
        ),
        120,
    )
    assert ok(hpa("describe", NAME, "-o", "json")).json()["autoscaler"]["engine"] == "hpa"


def test_the_keda_engine_on_a_cluster_without_keda_says_so(
    k8s_cluster_b: K8sCluster, k8s_namespace_b: str, home: Path
) -> None:
    from kubernetes import client

    api: Any = client.ApiextensionsV1Api(k8s_cluster_b.api_client())
    names = {crd.metadata.name for crd in api.list_custom_resource_definition().items}
    if "scaledobjects.keda.sh" in names:
        # The case needs a cluster without KEDA: b is one unless someone started the pipeline
        # there.
        missing_infra("a cluster without KEDA's CRDs (cluster b has them)")
    write_profile(home, "keda", k8s_cluster_b, k8s_namespace_b, "keda")
    deploy(k8s_cluster_b, k8s_namespace_b)
    for extra in ((), ("--dry-run",)):
        result = cli(home, "keda")(
            "autoscale", NAME, "--min", "1", "--max", "2", "--cpu", "50", *extra
        )
        assert result.code == 1
        assert (
            "KEDA is not installed in this cluster (no ScaledObject CRD): install KEDA or set "
            '[autoscaling] engine = "hpa"'
        ) in result.out
    assert read_hpa(k8s_cluster_b, k8s_namespace_b, NAME) is None
    # Reading back on such a cluster: no autoscaler, no error.
    described = ok(cli(home, "keda")("describe", NAME, "-o", "json")).json()
    assert described["autoscaler"] is None
