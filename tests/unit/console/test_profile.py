"""Profiles: bundled ones load, a user's override them, and every mistake is named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import profile as profile_module
from console.profile import (
    ProfileError,
    Quota,
    default_profile_name,
    list_profiles,
    load_profile,
)

MINIMAL_K8S = """
backend = "kubernetes"
[kubernetes]
context = "prod"
[store]
root = "hdfs://namenode:9870/models"
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh home folder with no XDG overrides, so user paths display as ``~/...``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "FLEETDECK_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FLEETDECK_HDFS_HTTP_PORT", raising=False)
    return tmp_path


def user_profile(home: Path, name: str, text: str) -> Path:
    path = home / ".config" / "fleetdeck" / "profiles" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_bundled_profile_loads(home: Path) -> None:
    found = {p.name: p for p in list_profiles()}
    assert {"local", "kwok", "example-production"} <= set(found)
    assert all(p.origin == "bundled" for p in found.values())
    for name in found:
        assert load_profile(name).name == name


def test_local_is_the_default_profile_and_runs_everything_on_this_machine(home: Path) -> None:
    assert default_profile_name() == "local"
    local = load_profile()
    assert (local.backend, local.kubernetes, local.route.kind) == ("local", None, "none")
    assert local.local is not None
    assert local.local.gateway_port == 8600
    assert local.store.root == str(home / ".local/share/fleetdeck/local/store")


def test_fleetdeck_profile_environment_variable_chooses_the_default(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETDECK_PROFILE", "kwok")
    assert default_profile_name() == "kwok"
    assert load_profile().name == "kwok"


def test_kwok_profile_targets_the_test_cluster_and_test_hdfs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwok = load_profile("kwok")
    assert kwok.backend == "kubernetes"
    assert kwok.kubernetes is not None
    assert kwok.kubernetes.kubeconfig == home / ".cache/fleetdeck/run/cluster/kubeconfig"
    assert kwok.kubernetes.context == "kwok-admin"
    assert kwok.kubernetes.namespaces == ("models", "models-staging")
    assert kwok.store.root == "hdfs://127.0.0.1:19870/fleetdeck/models"
    assert kwok.training.tolerations[0].key == "nvidia.com/gpu"

    monkeypatch.setenv("XDG_CACHE_HOME", "/elsewhere/cache")
    monkeypatch.setenv("FLEETDECK_HDFS_HTTP_PORT", "29870")
    moved = load_profile("kwok")
    assert moved.kubernetes is not None
    assert moved.kubernetes.kubeconfig == Path("/elsewhere/cache/fleetdeck/run/cluster/kubeconfig")
    assert moved.store.root == "hdfs://127.0.0.1:29870/fleetdeck/models"


def test_example_production_template_sets_every_section(home: Path) -> None:
    prod = load_profile("example-production")
    assert prod.read_only
    assert prod.predictor.autoscale is not None
    assert prod.predictor.autoscale.max_replicas == 10
    assert prod.predictor.resources.limits == {"cpu": "2", "memory": "1Gi"}
    assert prod.route.ingress_class == "nginx"
    assert prod.training.node_selector == {"accelerator": "nvidia-h100"}
    assert prod.batch.on_failure == "rollback-wave"


def test_a_user_profile_overrides_the_bundled_one_of_the_same_name(home: Path) -> None:
    path = user_profile(home, "kwok", MINIMAL_K8S)
    listed = {p.name: p for p in list_profiles()}
    assert (listed["kwok"].origin, listed["kwok"].path) == ("user", path)
    kwok = load_profile("kwok")
    assert kwok.source == path
    assert kwok.kubernetes is not None
    assert kwok.kubernetes.context == "prod"


def test_a_user_only_profile_is_listed_and_takes_defaults_for_missing_sections(
    home: Path,
) -> None:
    user_profile(home, "prod", MINIMAL_K8S)
    assert "prod" in [p.name for p in list_profiles()]
    prod = load_profile("prod")
    assert prod.kubernetes is not None
    assert (prod.kubernetes.kubeconfig, prod.kubernetes.namespaces) == (None, ())
    assert (prod.predictor.replicas, prod.predictor.port, prod.route.kind) == (2, 8080, "Ingress")
    assert prod.images.predictor.startswith("fleetdeck-predictor:")
    assert prod.batch.halt_after == Quota(count=1)


def test_xdg_config_home_moves_the_user_profiles(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "conf"))
    path = tmp_path / "conf" / "fleetdeck" / "profiles" / "staging.toml"
    path.parent.mkdir(parents=True)
    path.write_text(MINIMAL_K8S)
    assert load_profile("staging").source == path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            MINIMAL_K8S + '[predictor]\nreplicas = "two"\n',
            'prod.toml: predictor.replicas: expected an integer >= 0, got "two"',
            id="wrong-type",
        ),
        pytest.param(
            MINIMAL_K8S + "[predictor]\nreplica = 2\n",
            "prod.toml: predictor.replica: unknown key; expected one of: ",
            id="unknown-key",
        ),
        pytest.param(
            "colour = 1\n" + MINIMAL_K8S,
            "prod.toml: colour: unknown key",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "read_only = true\n",
            'prod.toml: backend: missing; expected "local" | "kubernetes"',
            id="missing-backend",
        ),
        pytest.param(
            'backend = "nomad"\n',
            'prod.toml: backend: expected "local" | "kubernetes", got "nomad"',
            id="backend-choice",
        ),
        pytest.param(
            'backend = "kubernetes"\n[store]\nroot = "/m"\n',
            'prod.toml: kubernetes: missing; required when backend = "kubernetes"',
            id="missing-kubernetes",
        ),
        pytest.param(
            'backend = "kubernetes"\n[kubernetes]\n',
            "prod.toml: store.root: missing; expected a store root",
            id="missing-store-root",
        ),
        pytest.param(
            'backend = "kubernetes"\n[kubernetes]\nnamespaces = "models"\n[store]\nroot = "/m"\n',
            "prod.toml: kubernetes.namespaces: expected an array of non-empty strings, "
            'got "models"',
            id="namespaces-not-a-list",
        ),
        pytest.param(
            "read_only = 1\n" + MINIMAL_K8S,
            "prod.toml: read_only: expected true or false, got 1",
            id="bool",
        ),
        pytest.param(
            MINIMAL_K8S + "[predictor]\nport = 70000\n",
            "prod.toml: predictor.port: expected an integer 1..65535, got 70000",
            id="port-range",
        ),
        pytest.param(
            MINIMAL_K8S + "[predictor]\nreplicas = true\n",
            "prod.toml: predictor.replicas: expected an integer >= 0, got true",
            id="bool-is-not-an-integer",
        ),
        pytest.param(
            MINIMAL_K8S + '[predictor]\nresources = { limits = { memory = "1 GB" } }\n',
            "prod.toml: predictor.resources.limits.memory: expected a Kubernetes quantity such as "
            '"500m", "2" or "512Mi", got "1 GB"',
            id="quantity",
        ),
        pytest.param(
            MINIMAL_K8S + '[predictor]\nresources = { request = { cpu = "1" } }\n',
            "prod.toml: predictor.resources.request: unknown key",
            id="resources-unknown-key",
        ),
        pytest.param(
            MINIMAL_K8S + "[predictor]\nautoscale = { min_replicas = 5, max_replicas = 2 }\n",
            "prod.toml: predictor.autoscale.max_replicas: expected an integer >= min_replicas (5)",
            id="autoscale-order",
        ),
        pytest.param(
            MINIMAL_K8S + '[route]\nkind = "Gateway"\n',
            'prod.toml: route.kind: expected "Ingress" | "HTTPRoute" | "none", got "Gateway"',
            id="route-kind",
        ),
        pytest.param(
            MINIMAL_K8S + '[route]\nkind = "HTTPRoute"\n',
            "prod.toml: route.gateway: missing; expected the Gateway's name",
            id="httproute-needs-gateway",
        ),
        pytest.param(
            MINIMAL_K8S + '[route]\nkind = "HTTPRoute"\ngateway = "gw"\ningress_class = "nginx"\n',
            'prod.toml: route.ingress_class: only for kind = "Ingress"',
            id="ingress-class-on-httproute",
        ),
        pytest.param(
            MINIMAL_K8S + '[training]\ntolerations = [{ key = "gpu", operator = "In" }]\n',
            'prod.toml: training.tolerations[0].operator: expected "Exists" | "Equal", got "In"',
            id="toleration-operator",
        ),
        pytest.param(
            MINIMAL_K8S + '[training]\ntolerations = [{ key = "gpu", effects = "NoSchedule" }]\n',
            "prod.toml: training.tolerations[0].effects: unknown key; expected one of: effect,",
            id="toleration-unknown-key",
        ),
        pytest.param(
            MINIMAL_K8S
            + '[training]\ntolerations = [{ key = "g", operator = "Exists", value = "x" }]\n',
            'prod.toml: training.tolerations[0].value: must be empty when operator = "Exists"',
            id="toleration-exists-with-value",
        ),
        pytest.param(
            MINIMAL_K8S + "[training]\nnode_selector = { accelerator = 1 }\n",
            "prod.toml: training.node_selector.accelerator: expected a string, got 1",
            id="node-selector-value",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\nwaves = "10%,1,100%"\n',
            "prod.toml: batch.waves: expected waves such as 1,10%,100%",
            id="waves-percent-before-count",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\nwaves = "1,50%,10%,100%"\n',
            "prod.toml: batch.waves: expected waves such as 1,10%,100%",
            id="waves-decreasing",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\nwaves = "1,10%,50%"\n',
            "prod.toml: batch.waves: expected waves such as 1,10%,100%",
            id="waves-not-ending-at-100",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\nwaves = "1,,100%"\n',
            "prod.toml: batch.waves: expected waves such as 1,10%,100%",
            id="waves-syntax",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\nhalt_after = "lots"\n',
            'prod.toml: batch.halt_after: expected a count such as 1 or a percentage such as "10%"',
            id="halt-after",
        ),
        pytest.param(
            MINIMAL_K8S + '[batch]\non_failure = "panic"\n',
            'prod.toml: batch.on_failure: expected "rollback-wave" | "rollback-all" | "pause"',
            id="on-failure",
        ),
        pytest.param(
            MINIMAL_K8S + "[local]\ngateway_port = 8600\n",
            'prod.toml: local: only for backend = "local"',
            id="local-section-on-kubernetes",
        ),
        pytest.param(
            'backend = "local"\n[local]\ngateway_port = 0\n',
            "prod.toml: local.gateway_port: expected an integer 1..65535, got 0",
            id="gateway-port",
        ),
        pytest.param(
            MINIMAL_K8S + "[slo]\nerror_percent = 120\n",
            "prod.toml: slo.error_percent: expected a number 0..100, got 120",
            id="slo-range",
        ),
        pytest.param(
            MINIMAL_K8S + "[[slo.rules]]\np99_ms = 50\n",
            "prod.toml: slo.rules[0].model: a rule names a model, a namespace or both",
            id="slo-rule-for-nothing",
        ),
        pytest.param(
            MINIMAL_K8S + '[[slo.rules]]\nmodel = "digits"\n',
            "prod.toml: slo.rules[0].p99_ms: a rule sets p99_ms, error_percent or both",
            id="slo-rule-setting-nothing",
        ),
        pytest.param(
            MINIMAL_K8S + '[[slo.rules]]\nmodel = "digits"\np99 = 50\n',
            "prod.toml: slo.rules[0].",
            id="slo-rule-unknown-key",
        ),
        pytest.param(
            MINIMAL_K8S + "[slo\n",
            "prod.toml: invalid TOML: ",
            id="toml-syntax",
        ),
    ],
)
def test_each_kind_of_mistake_names_the_file_the_key_and_the_expectation(
    home: Path, body: str, message: str
) -> None:
    user_profile(home, "prod", body)
    with pytest.raises(ProfileError) as caught:
        load_profile("prod")
    assert str(caught.value).startswith(f"~/.config/fleetdeck/profiles/{message}")


def test_variables_and_home_are_expanded_in_paths_and_urls(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAMENODE", "nn.example.com")
    monkeypatch.setenv("TAG", "1.2.3")
    user_profile(
        home,
        "prod",
        """
backend = "kubernetes"
[kubernetes]
kubeconfig = "~/kube/${CLUSTER:-prod}.yaml"
[store]
root = "hdfs://${NAMENODE}:9870/models"
[images]
predictor = "registry/predictor:${TAG}"
[training]
code = "fleetdeck-train==${TAG}"
""",
    )
    prod = load_profile("prod")
    assert prod.kubernetes is not None
    assert prod.kubernetes.kubeconfig == home / "kube" / "prod.yaml"
    assert prod.store.root == "hdfs://nn.example.com:9870/models"
    assert prod.images.predictor == "registry/predictor:1.2.3"
    assert prod.training.code == "fleetdeck-train==1.2.3"


def test_an_unset_variable_without_default_is_an_error_naming_it(home: Path) -> None:
    user_profile(home, "prod", MINIMAL_K8S.replace("namenode", "${NO_SUCH_FLEETDECK_VAR}"))
    expected = r"store\.root: environment variable NO_SUCH_FLEETDECK_VAR is not set"
    with pytest.raises(ProfileError, match=expected):
        load_profile("prod")


def test_an_unknown_profile_says_where_it_looked(home: Path) -> None:
    with pytest.raises(ProfileError, match=r"no profile named 'nope'; looked in ~/.config/fleet"):
        load_profile("nope")
    with pytest.raises(ProfileError, match="not a profile name"):
        load_profile("../etc/passwd")


def test_without_the_bundled_folder_local_still_loads_and_others_fail_clearly(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profile_module, "bundled_profiles_dir", lambda: None)
    assert list_profiles() == []
    local = load_profile("local")
    assert (local.backend, local.source) == ("local", None)
    with pytest.raises(ProfileError, match="no bundled profiles folder"):
        load_profile("kwok")


def test_waves_split_a_batch_into_cumulative_sizes(home: Path) -> None:
    user_profile(home, "prod", MINIMAL_K8S + '[batch]\nwaves = "1,3,25%,100%"\nhalt_after = "5%"\n')
    batch = load_profile("prod").batch
    assert [str(w) for w in batch.waves] == ["1", "3", "25%", "100%"]
    assert batch.wave_sizes(100) == [1, 2, 22, 75]
    assert batch.wave_sizes(2) == [1, 1]  # empty waves vanish
    assert batch.halt_after == Quota(percent=5.0)
    assert batch.halt_after.of(30) == 2  # a percentage rounds up


def test_slo_rules_give_a_model_or_namespace_its_own_limits_the_most_specific_winning(
    home: Path,
) -> None:
    user_profile(
        home,
        "prod",
        MINIMAL_K8S
        + "[slo]\np99_ms = 250\nerror_percent = 1\n"
        + '[[slo.rules]]\nnamespace = "ranking"\np99_ms = 80\nerror_percent = 0.5\n'
        + '[[slo.rules]]\nmodel = "digits"\np99_ms = 40\n'
        + '[[slo.rules]]\nmodel = "digits"\nnamespace = "ranking"\np99_ms = 20\n',
    )
    slo = load_profile("prod").slo
    assert slo.limits("iris", "models") == (250.0, 1.0)  # the defaults
    assert slo.limits("iris", "ranking") == (80.0, 0.5)  # the namespace's
    assert slo.limits("digits", "models") == (40.0, 1.0)  # the model's p99, default errors
    assert slo.limits("digits", "ranking") == (20.0, 0.5)  # both named; errors from ranking
