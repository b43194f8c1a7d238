"""`fleetdeck autoscale` on Kubernetes, the pure parts: each engine's object, the PromQL that goes
into KEDA's trigger, what may be done beside the autoscalers already there, and reading an
autoscaler back (its metric now and its decisions)."""

from __future__ import annotations

from typing import Any

import pytest

from console.backends.kubernetes import autoscale_keda as keda
from console.backends.kubernetes.autoscale import (
    Existing,
    Plan,
    autoscaler_info,
    current_text,
    decisions,
    existing_hpa,
    existing_scaled_object,
    hpa_manifest,
    parse_quantity,
    plan,
    scaled_object_info,
)
from console.backends.kubernetes.manifests import ManifestError
from console.core import guard
from console.core.guard import Guard, Need
from console.model import AutoscalerCondition, AutoscaleRequest, ScalingDecision
from console.profile import AutoscalingSettings

PROMETHEUS = "http://prometheus.monitoring.svc:9090"
KEDA = AutoscalingSettings("keda", PROMETHEUS, "1m", 15)
DEPLOYMENT = {"metadata": {"labels": {"fleetdeck.io/model": "digits"}}}
LABELS = {"namespace_label": "namespace", "deployment_label": "app_kubernetes_io_name"}
SELECTOR = (
    "(&LabelSelector{MatchLabels:map[string]string{scaledobject.keda.sh/name: digits,},"
    "MatchExpressions:[]LabelSelectorRequirement{},})"
)


def scaled_object(request: AutoscaleRequest, settings: AutoscalingSettings = KEDA) -> Any:
    return keda.scaled_object_manifest(
        "models", request, DEPLOYMENT, "autoscale by alice via fleetdeck", settings, **LABELS
    )


# -- KEDA's object ------------------------------------------------------------------------------
def test_the_request_rate_query_counts_predictions_of_the_deployment_over_the_window() -> None:
    query = keda.request_rate_query("models", "digits", window="1m", **LABELS)
    assert query == (
        'sum(rate(fleetdeck_predictor_requests_total{namespace="models",'
        'app_kubernetes_io_name="digits",protocol=~"v1|v2"}[1m]))'
    )
    other = keda.request_rate_query(
        "prod-eu", "fraud-v2", namespace_label="kube_ns", deployment_label="app", window="2m30s"
    )
    assert other == (
        'sum(rate(fleetdeck_predictor_requests_total{kube_ns="prod-eu",app="fraud-v2",'
        'protocol=~"v1|v2"}[2m30s]))'
    )


def test_a_promql_string_holds_anything_without_ending_itself() -> None:
    assert keda.promql_string("digits") == '"digits"'
    assert keda.promql_string('a"}[1m])) or vector(1e9) # "') == (
        '"a\\"}[1m])) or vector(1e9) # \\""'
    )
    assert keda.promql_string("back\\slash\nline\x1b") == '"back\\\\slash\\u000aline\\u001b"'


@pytest.mark.parametrize(
    ("namespace", "name", "labels", "window", "refused"),
    [
        ('models"', "digits", LABELS, "1m", "invalid namespace"),
        ("models", 'digits"} or vector(1)', LABELS, "1m", "invalid deployment name"),
        ("models", "Digits", LABELS, "1m", "invalid deployment name"),
        (
            "models",
            "digits",
            {**LABELS, "deployment_label": "app.name"},
            "1m",
            "invalid Prometheus",
        ),
        ("models", "digits", {**LABELS, "namespace_label": 'ns=~".*",x'}, "1m", "invalid Prom"),
        ("models", "digits", LABELS, "1m]) or vector(1", "invalid rate window"),
        ("models", "digits", LABELS, "0m", "invalid rate window"),
    ],
)
def test_nothing_unchecked_goes_into_the_query(
    namespace: str, name: str, labels: dict[str, str], window: str, refused: str
) -> None:
    with pytest.raises(ManifestError, match=refused):
        keda.request_rate_query(namespace, name, window=window, **labels)


def test_a_requests_per_pod_target_is_a_prometheus_trigger_with_the_scale_down_window() -> None:
    request = AutoscaleRequest("digits", 1, 4, rps_per_pod=12.5, scale_down_seconds=10)
    made = scaled_object(request)
    assert made["apiVersion"] == "keda.sh/v1alpha1"
    assert made["kind"] == "ScaledObject"
    assert made["metadata"] == {
        "name": "digits",
        "namespace": "models",
        "labels": {
            "app.kubernetes.io/managed-by": "fleetdeck",
            "app.kubernetes.io/name": "digits",
            "fleetdeck.io/model": "digits",
        },
        "annotations": {"kubernetes.io/change-cause": "autoscale by alice via fleetdeck"},
    }
    assert made["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits"},
        "pollingInterval": 15,
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "advanced": {
            "horizontalPodAutoscalerConfig": {
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 10}}
            }
        },
        "triggers": [
            {
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": keda.request_rate_query("models", "digits", window="1m", **LABELS),
                    "threshold": "12.5",
                },
            }
        ],
    }


def test_a_cpu_target_is_keda_s_cpu_trigger_and_no_window_leaves_the_default() -> None:
    made = scaled_object(AutoscaleRequest("digits", 2, 6, cpu_percent=70))
    assert made["spec"]["triggers"] == [
        {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    ]
    assert "advanced" not in made["spec"]
    polled = scaled_object(
        AutoscaleRequest("digits", 1, 2, rps_per_pod=10),
        AutoscalingSettings("keda", PROMETHEUS + "/", "30s", 5),
    )
    trigger = polled["spec"]["triggers"][0]["metadata"]
    assert (trigger["serverAddress"], trigger["threshold"]) == (PROMETHEUS, "10")
    assert trigger["query"].endswith("[30s]))")
    assert polled["spec"]["pollingInterval"] == 5


def test_a_keda_target_without_a_prometheus_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"set \[autoscaling\] prometheus_url"):
        scaled_object(AutoscaleRequest("digits", 1, 2, rps_per_pod=10), AutoscalingSettings("keda"))


def test_the_hpa_takes_the_scale_down_window_as_its_behavior() -> None:
    request = AutoscaleRequest("digits", 1, 3, rps_per_pod=20, scale_down_seconds=60)
    hpa = hpa_manifest("models", request, DEPLOYMENT, "cause")
    assert hpa["spec"]["behavior"] == {"scaleDown": {"stabilizationWindowSeconds": 60}}
    assert hpa["spec"]["metrics"][0]["pods"]["target"] == {
        "type": "AverageValue",
        "averageValue": "20",
    }
    plain = hpa_manifest("models", AutoscaleRequest("digits", 1, 3, cpu_percent=50), {}, "c")
    assert "behavior" not in plain["spec"]


# -- what may be done beside what is there ------------------------------------------------------
OURS = {"app.kubernetes.io/managed-by": "fleetdeck"}


def hpa(name: str, labels: dict[str, str] | None = None, owner: str = "") -> Existing:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"kind": "ScaledObject", "name": owner, "controller": True}]
    return existing_hpa({"metadata": meta})


def so(name: str, labels: dict[str, str] | None = None) -> Existing:
    return existing_scaled_object({"metadata": {"name": name, "labels": labels or {}}})


def test_nothing_there_is_created_and_fleetdecks_own_is_updated() -> None:
    assert plan("keda", "digits", [], None) == Plan()
    assert plan("hpa", "digits", [], None) == Plan()
    assert plan("hpa", "digits", [hpa("digits", OURS)], None) == Plan(update=True)
    # KEDA's HPA for fleetdeck's ScaledObject goes with it (KEDA copies its labels onto it).
    keda_hpa = hpa("keda-hpa-digits", OURS, owner="digits")
    assert plan("keda", "digits", [keda_hpa], so("digits", OURS)) == Plan(update=True)


def test_switching_engines_removes_fleetdecks_object_of_the_other_engine() -> None:
    ours_hpa = hpa("digits", OURS)
    assert plan("keda", "digits", [ours_hpa], None) == Plan(remove=(ours_hpa,))
    ours_so = so("digits", OURS)
    keda_hpa = hpa("keda-hpa-digits", OURS, owner="digits")
    assert plan("hpa", "digits", [keda_hpa], ours_so) == Plan(remove=(ours_so,))
    # Both left from before: the engine's own is updated, the other removed.
    assert plan("keda", "digits", [ours_hpa, keda_hpa], ours_so) == Plan(True, (ours_hpa,))


@pytest.mark.parametrize(
    ("engine", "hpas", "scaled", "said"),
    [
        ("hpa", [hpa("digits")], None, "an autoscaler digits exists that fleetdeck did not make"),
        (
            "keda",
            [hpa("digits", {"app.kubernetes.io/managed-by": "argocd"})],
            None,
            "(managed-by argocd)",
        ),
        ("keda", [], so("digits"), "a KEDA ScaledObject digits exists that fleetdeck did not make"),
        ("hpa", [], so("digits", {"team": "x"}), "a KEDA ScaledObject digits exists that"),
        (
            "hpa",
            [hpa("digits-cpu", OURS)],
            None,
            "HorizontalPodAutoscaler digits-cpu that fleetdeck did not make scales digits",
        ),
        (
            "keda",
            [hpa("keda-hpa-other", owner="other")],
            None,
            "made by KEDA for ScaledObject other",
        ),
        (
            "keda",
            [hpa("keda-hpa-digits", owner="digits")],
            so("digits"),
            "ScaledObject digits exists",
        ),
    ],
)
def test_someone_elses_autoscaler_is_refused_and_nothing_is_made_beside_it(
    engine: str, hpas: list[Existing], scaled: Existing | None, said: str
) -> None:
    found = plan("keda" if engine == "keda" else "hpa", "digits", hpas, scaled)
    assert (found.update, found.remove) == (False, ())
    assert said in found.refusal
    assert found.refusal.endswith(
        "left unchanged and nothing made beside it (two autoscalers would fight over the "
        "deployment): edit or delete it yourself"
    )


# -- reading back -------------------------------------------------------------------------------
def test_quantities_read_back() -> None:
    assert parse_quantity("24100m") == pytest.approx(24.1)
    assert parse_quantity("12") == 12
    assert parse_quantity("1.5k") == 1500
    assert parse_quantity("2Ki") == 2048
    assert parse_quantity("fast") is None
    assert parse_quantity("1e400") is None


def test_current_metrics_in_the_targets_words() -> None:
    cpu = {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 45}}}
    pods = {
        "type": "Pods",
        "pods": {
            "metric": {"name": "fleetdeck_predictor_requests_per_second"},
            "current": {"averageValue": "24133m"},
        },
    }
    external = {
        "type": "External",
        "external": {"metric": {"name": "s0-prometheus"}, "current": {"averageValue": "421m"}},
    }
    assert current_text(cpu, lambda _: False) == "45% CPU"
    assert current_text(pods, lambda _: False) == "24.1 req/s per pod"
    assert current_text(external, lambda name: name == "s0-prometheus") == "0.42 req/s per pod"
    assert current_text(external, lambda _: False) == "s0-prometheus 0.42"
    assert current_text({"type": "Resource", "resource": {"name": "cpu"}}, lambda _: False) is None


def rescale(size: int, reason: str, at: str, **extra: Any) -> dict[str, Any]:
    return {
        "reason": "SuccessfulRescale",
        "message": f"New size: {size}; reason: {reason}",
        "lastTimestamp": at,
        **extra,
    }


def test_decisions_are_the_rescale_events_newest_first_each_from_the_one_before() -> None:
    events = [
        rescale(1, "All metrics below target", "2026-12-04T20:10:00Z"),
        {"reason": "FailedGetExternalMetric", "message": "unable to get", "type": "Warning"},
        rescale(4, f"external metric s0-prometheus{SELECTOR} above target", "2026-12-04T20:02:00Z"),
        rescale(
            2,
            "cpu resource utilization (percentage of request) above target",
            "2026-12-04T20:01:00Z",
        ),
        {
            "reason": "SuccessfulRescale",
            "message": "something else",
            "lastTimestamp": "2026-12-04T20:11:00Z",
        },
    ]
    assert decisions(events) == (
        ScalingDecision(1796415000.0, 4, 1, "All metrics below target"),
        ScalingDecision(1796414520.0, 2, 4, "external metric s0-prometheus above target"),
        # The oldest kept: the size before it is unknown (0, shown "?").
        ScalingDecision(
            1796414460.0, 0, 2, "cpu resource utilization (percentage of request) above target"
        ),
    )
    assert decisions([]) == ()


def test_a_reason_not_shaped_as_expected_is_kept_as_it_is() -> None:
    odd = rescale(3, "external metric x(&LabelSelector{unclosed", "2026-12-04T20:00:00Z")
    assert decisions([odd])[0].reason == "external metric x(&LabelSelector{unclosed"
    dated = {**rescale(2, "r", ""), "lastTimestamp": None, "eventTime": "2026-12-04T20:00:00.5Z"}
    assert decisions([dated])[0].at == 1796414400.5


KEDA_SO = {
    "metadata": {"name": "digits", "labels": OURS},
    "spec": {
        "minReplicaCount": 1,
        "maxReplicaCount": 4,
        "triggers": [
            {
                "type": "prometheus",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": PROMETHEUS,
                    "query": keda.request_rate_query("models", "digits", window="1m", **LABELS),
                    "threshold": "10",
                },
            }
        ],
    },
    "status": {
        "hpaName": "keda-hpa-digits",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "ScaledObjectReady", "message": "ok"},
            {"type": "Active", "status": "True", "reason": "ScalerActive", "message": "active"},
            {"type": "Fallback", "status": "False", "reason": "NoFallbackFound", "message": ""},
        ],
    },
}
KEDA_HPA = {
    "metadata": {"name": "keda-hpa-digits"},
    "spec": {"minReplicas": 1, "maxReplicas": 4},
    "status": {
        "currentReplicas": 3,
        "desiredReplicas": 3,
        "currentMetrics": [
            {
                "type": "External",
                "external": {
                    "metric": {"name": "s0-prometheus", "selector": {}},
                    "current": {"averageValue": "5833m"},
                },
            }
        ],
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale", "message": "m"}
        ],
    },
}


def test_a_scaled_object_reads_back_with_its_hpas_numbers_and_decisions() -> None:
    events = [
        rescale(3, f"external metric s0-prometheus{SELECTOR} above target", "2026-12-04T20:00:00Z")
    ]
    info = scaled_object_info(KEDA_SO, KEDA_HPA, events)
    assert (info.name, info.engine, info.min_replicas, info.max_replicas) == (
        "digits",
        "keda",
        1,
        4,
    )
    assert (info.current_replicas, info.desired_replicas) == (3, 3)
    assert info.targets == ("10 req/s per pod",)
    assert info.current == ("5.83 req/s per pod",)
    assert info.managed_by_fleetdeck
    assert info.conditions == (
        AutoscalerCondition("AbleToScale", "True", "ReadyForNewScale", "m"),
        AutoscalerCondition("ScaledObjectReady", "True", "ScaledObjectReady", "ok"),
        AutoscalerCondition("ScaledObjectActive", "True", "ScalerActive", "active"),
    )
    assert info.decisions == (
        ScalingDecision(1796414400.0, 0, 3, "external metric s0-prometheus above target"),
    )
    # Before KEDA made its HPA: the bounds and the target, no numbers yet.
    early = scaled_object_info({**KEDA_SO, "status": {}}, None)
    assert (early.current_replicas, early.current, early.decisions) == (None, (), ())
    cpu = {**KEDA_SO, "spec": {"triggers": [{"type": "cpu", "metadata": {"value": "70"}}]}}
    assert scaled_object_info(cpu, None).targets == ("70% CPU",)
    assert (
        scaled_object_info(cpu, None).min_replicas,
        scaled_object_info(cpu, None).max_replicas,
    ) == (0, 100)
    assert keda.hpa_name({"metadata": {"name": "x"}}) == "keda-hpa-x"


def test_a_plain_hpa_reads_back_its_metric_now_and_decisions() -> None:
    hpa_object = {
        "metadata": {"name": "digits", "labels": OURS},
        "spec": {
            "minReplicas": 1,
            "maxReplicas": 5,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": 2,
            "desiredReplicas": 3,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 96}},
                }
            ],
        },
    }
    info = autoscaler_info(hpa_object, [rescale(3, "cpu above target", "2026-12-04T20:00:00Z")])
    assert (info.engine, info.targets, info.current) == ("hpa", ("70% CPU",), ("96% CPU",))
    assert [(d.from_replicas, d.to_replicas) for d in info.decisions] == [(0, 3)]


# -- RBAC for each engine -----------------------------------------------------------------------
class Reviews:
    def __init__(self, allowed: set[tuple[str, str]]) -> None:
        self.allowed = allowed
        self.asked: list[tuple[str, str]] = []

    def can(self, verb: str, resource: str, namespace: str | None = None) -> bool:
        self.asked.append((verb, resource))
        return (verb, resource) in self.allowed


def test_autoscale_is_checked_against_the_engines_resource() -> None:
    assert guard.needs("autoscale", "keda") == (
        Need("create", "scaledobjects"),
        Need("patch", "scaledobjects"),
    )
    assert guard.needs("autoscale") == guard.NEEDS["autoscale"]
    assert guard.needs("scale", "keda") == guard.NEEDS["scale"]
    hpa_only = Reviews(
        {("create", "horizontalpodautoscalers"), ("patch", "horizontalpodautoscalers")}
    )
    keda_guard = Guard(
        hpa_only, read_only=False, profile="prod", user="bob", autoscale_engine="keda"
    )
    (refused,) = keda_guard.refusals("autoscale", ["models"])
    assert refused.text.startswith(
        "forbidden: user 'bob' may not create scaledobjects in namespace"
    )
    assert Guard(hpa_only, False, "prod", "bob").refusals("autoscale", ["models"]) == []
