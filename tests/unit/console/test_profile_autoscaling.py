"""``[autoscaling]``: which engine `fleetdeck autoscale` configures, per profile and cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.profile import (
    AutoscalingSettings,
    ProfileError,
    load_profile,
    parse_profile,
)

K8S = """
backend = "kubernetes"
[kubernetes]
context = "prod"
[store]
root = "hdfs://namenode:9870/models"
"""
PROMETHEUS = "http://prometheus.monitoring.svc:9090"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "FLEETDECK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def load(home: Path, text: str) -> AutoscalingSettings:
    path = home / ".config" / "fleetdeck" / "profiles" / "prod.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return load_profile("prod").autoscaling


def fails(home: Path, text: str) -> str:
    with pytest.raises(ProfileError) as caught:
        load(home, text)
    prefix = "~/.config/fleetdeck/profiles/prod.toml: "
    assert str(caught.value).startswith(prefix)
    return str(caught.value).removeprefix(prefix)


def clusters(*entries: dict[str, object], **top: object) -> dict[str, object]:
    return {
        "backend": "kubernetes",
        "kubernetes": {"kubeconfig": "/etc/fleet/kubeconfig"},
        "store": {"root": "hdfs://namenode:9870/models"},
        "clusters": list(entries),
        **top,
    }


def test_a_kubernetes_profile_autoscales_through_the_hpa_unless_it_says_otherwise(
    home: Path,
) -> None:
    assert load(home, K8S) == AutoscalingSettings(engine="hpa")
    assert load(home, K8S + '[autoscaling]\nengine = "hpa"\n').engine == "hpa"


def test_keda_takes_the_metrics_prometheus_by_default_and_its_own_when_given(home: Path) -> None:
    with_metrics = K8S + f'[metrics]\nprometheus_url = "{PROMETHEUS}"\n'
    keda = load(home, with_metrics + '[autoscaling]\nengine = "keda"\n')
    assert keda == AutoscalingSettings("keda", PROMETHEUS, "1m", 15)
    own = load(
        home,
        with_metrics
        + '[autoscaling]\nengine = "keda"\nprometheus_url = "http://10.0.0.9:9090"\n'
        + 'rate_window = "2m30s"\npolling_seconds = 5\n',
    )
    assert own == AutoscalingSettings("keda", "http://10.0.0.9:9090", "2m30s", 5)


def test_the_bundled_profiles_load_with_their_engines(home: Path) -> None:
    assert load_profile("kwok").autoscaling.engine == "hpa"
    assert load_profile("example-production").autoscaling.engine == "hpa"
    assert load_profile("local").autoscaling.engine == "local"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            K8S + '[autoscaling]\nengine = "keda"\n',
            'autoscaling.prometheus_url: missing; required when engine = "keda": the '
            "Prometheus address KEDA's operator queries (usually in-cluster, such as "
            "http://prometheus.monitoring.svc:9090), or set [metrics] prometheus_url",
            id="keda-without-prometheus",
        ),
        pytest.param(
            K8S + '[autoscaling]\nengine = "kubernetes"\n',
            'autoscaling.engine: expected "hpa" | "keda" | "local", got "kubernetes"',
            id="unknown-engine",
        ),
        pytest.param(
            K8S + '[autoscaling]\nengine = "local"\n',
            'autoscaling.engine: expected "hpa" | "keda" ("local" is the local runtime\'s, '
            'for backend = "local"), got "local"',
            id="local-engine-on-kubernetes",
        ),
        pytest.param(
            K8S + f'[autoscaling]\nprometheus_url = "{PROMETHEUS}"\n',
            'autoscaling.prometheus_url: only for engine = "keda" (the other engines query no '
            "Prometheus themselves)",
            id="keda-key-for-the-hpa",
        ),
        pytest.param(
            K8S + '[autoscaling]\nengine = "keda"\nprometheus_url = "prometheus:9090"\n',
            "autoscaling.prometheus_url: expected an http:// or https:// URL, "
            'got "prometheus:9090"',
            id="url-without-scheme",
        ),
        pytest.param(
            K8S + '[autoscaling]\nengine = "keda"\nprometheus_url = "http://a b:9090"\n',
            "autoscaling.prometheus_url: expected an http:// or https:// URL, "
            'got "http://a b:9090"',
            id="url-with-a-space",
        ),
        pytest.param(
            K8S
            + f'[autoscaling]\nengine = "keda"\nprometheus_url = "{PROMETHEUS}"\n'
            + 'rate_window = "1 minute"\n',
            'autoscaling.rate_window: expected a Prometheus duration above 0 such as "30s", '
            '"1m" or "2m30s", got "1 minute"',
            id="rate-window-words",
        ),
        pytest.param(
            K8S
            + f'[autoscaling]\nengine = "keda"\nprometheus_url = "{PROMETHEUS}"\n'
            + 'rate_window = "0s"\n',
            "autoscaling.rate_window: expected a Prometheus duration above 0",
            id="rate-window-zero",
        ),
        pytest.param(
            K8S
            + f'[autoscaling]\nengine = "keda"\nprometheus_url = "{PROMETHEUS}"\n'
            + 'rate_window = "30s1m"\n',
            "autoscaling.rate_window: expected a Prometheus duration above 0",
            id="rate-window-units-out-of-order",
        ),
        pytest.param(
            K8S
            + f'[autoscaling]\nengine = "keda"\nprometheus_url = "{PROMETHEUS}"\n'
            + "rate_window = 60\n",
            "autoscaling.rate_window: expected a string, got 60",
            id="rate-window-number",
        ),
        pytest.param(
            K8S
            + f'[autoscaling]\nengine = "keda"\nprometheus_url = "{PROMETHEUS}"\n'
            + "polling_seconds = 0\n",
            "autoscaling.polling_seconds: expected an integer 1..3600, got 0",
            id="polling-zero",
        ),
        pytest.param(
            K8S + '[autoscaling]\nengine = "keda"\npoll = 5\n',
            "autoscaling.poll: unknown key; expected one of: engine, polling_seconds, "
            "prometheus_url, rate_window",
            id="unknown-key",
        ),
        pytest.param(
            K8S + '[metrics]\nnamespace_label = "kubernetes-namespace"\n',
            "metrics.namespace_label: expected a Prometheus label name (letters, digits and _, "
            'not starting with a digit), got "kubernetes-namespace"',
            id="label-name-that-promql-cannot-hold",
        ),
        pytest.param(
            'backend = "local"\n[autoscaling]\nengine = "keda"\n',
            'autoscaling.engine: expected "local" (the local runtime\'s agent is the '
            'autoscaler; "hpa" and "keda" need backend = "kubernetes"), got "keda"',
            id="keda-on-a-local-profile",
        ),
        pytest.param(
            f'backend = "local"\n[autoscaling]\nprometheus_url = "{PROMETHEUS}"\n',
            'autoscaling.prometheus_url: only for engine = "keda" (backend = "kubernetes")',
            id="keda-key-on-a-local-profile",
        ),
    ],
)
def test_each_mistake_names_the_key_and_what_to_write(home: Path, body: str, message: str) -> None:
    assert fails(home, body).startswith(message)


def test_a_local_profile_autoscales_itself(home: Path) -> None:
    assert load(home, 'backend = "local"\n') == AutoscalingSettings(engine="local")
    assert load(home, 'backend = "local"\n[autoscaling]\nengine = "local"\n').engine == "local"


def test_each_cluster_takes_the_profiles_autoscaling_and_may_change_it() -> None:
    profile = parse_profile(
        "fleet",
        clusters(
            {"name": "eu", "context": "eu"},
            {
                "name": "us",
                "context": "us",
                "metrics": {"prometheus_url": "http://prometheus.us:9090"},
            },
            {"name": "lab", "context": "lab", "autoscaling": {"engine": "hpa"}},
            {
                "name": "edge",
                "context": "edge",
                "autoscaling": {"prometheus_url": "http://10.1.0.1:9090", "rate_window": "30s"},
            },
            autoscaling={"engine": "keda", "rate_window": "2m", "polling_seconds": 10},
            metrics={"prometheus_url": "http://prometheus.eu:9090"},
        ),
        source=None,
    )
    scaling = {c.name: c.autoscaling for c in profile.clusters}
    assert scaling == {
        "eu": AutoscalingSettings("keda", "http://prometheus.eu:9090", "2m", 10),
        # The cluster's own Prometheus when [autoscaling] names none.
        "us": AutoscalingSettings("keda", "http://prometheus.us:9090", "2m", 10),
        "lab": AutoscalingSettings("hpa"),
        "edge": AutoscalingSettings("keda", "http://10.1.0.1:9090", "30s", 10),
    }
    assert profile.autoscaling == scaling["eu"]  # the first cluster's until narrowed
    assert profile.for_cluster("lab").autoscaling == scaling["lab"]
    assert profile.for_cluster("us").autoscaling == scaling["us"]


def test_a_cluster_entry_says_its_own_mistakes() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(
            "fleet",
            clusters(
                {"name": "eu", "context": "eu"},
                {"name": "lab", "context": "lab", "autoscaling": {"engine": "keda"}},
                metrics={},
            ),
            source=None,
        )
    assert str(caught.value).startswith(
        "<built-in fleet>: clusters[1].autoscaling.prometheus_url: missing; "
        'required when engine = "keda"'
    )
    with pytest.raises(ProfileError, match=r"clusters\[0\]\.autoscaling\.rate_window: only for"):
        parse_profile(
            "fleet",
            clusters({"name": "eu", "context": "eu", "autoscaling": {"rate_window": "1m"}}),
            source=None,
        )
    # KEDA's keys at the top are for clusters that use KEDA: none does.
    with pytest.raises(ProfileError, match=r"fleet>: autoscaling\.polling_seconds: only for"):
        parse_profile(
            "fleet",
            clusters({"name": "eu", "context": "eu"}, autoscaling={"polling_seconds": 5}),
            source=None,
        )
    # ... one does: they are its defaults.
    profile = parse_profile(
        "fleet",
        clusters(
            {"name": "eu", "context": "eu"},
            {
                "name": "lab",
                "context": "lab",
                "autoscaling": {"engine": "keda", "prometheus_url": PROMETHEUS},
            },
            autoscaling={"polling_seconds": 5},
        ),
        source=None,
    )
    assert [c.autoscaling.polling_seconds for c in profile.clusters] == [15, 5]


def test_contexts_widened_from_a_profile_keep_its_autoscaling() -> None:
    profile = parse_profile(
        "prod",
        {
            "backend": "kubernetes",
            "kubernetes": {"context": "a"},
            "store": {"root": "/models"},
            "autoscaling": {"engine": "keda", "prometheus_url": PROMETHEUS},
        },
        source=None,
    )
    widened = profile.on_contexts(["a", "b"])
    assert {c.autoscaling.engine for c in widened.clusters} == {"keda"}
    assert widened.for_cluster("b").autoscaling.prometheus_url == PROMETHEUS
