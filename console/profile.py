"""Profiles: named environments (backend, cluster, store, images, defaults) read from TOML.

Bundled profiles live in the checkout's ``profiles/`` folder (a wheel installs them under
``<prefix>/share/fleetdeck/profiles/``); a user's profiles in
``${XDG_CONFIG_HOME:-~/.config}/fleetdeck/profiles/<name>.toml`` override them by name.
``local`` is the default and also works with no file at all, so an installed console without
the bundled folder still starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import console
from console import paths
from console.names import InvalidName, check_label
from console.profile_reader import (
    QUANTITY,
    RESOURCE_NAME,
    ProfileError,
    Quota,
    Table,
    display_path,
    parse_quota,
    parse_waves,
)

__all__ = [
    "DEFAULT_CLUSTER",
    "Autoscale",
    "AutoscalingSettings",
    "BatchSettings",
    "ClusterSettings",
    "Images",
    "KubernetesSettings",
    "LocalSettings",
    "MetricsSettings",
    "PredictorSettings",
    "Profile",
    "ProfileError",
    "ProfileFile",
    "Quota",
    "Resources",
    "RouteSettings",
    "SloRule",
    "SloSettings",
    "StoreSettings",
    "Toleration",
    "TrainingSettings",
    "bundled_profiles_dir",
    "default_profile_name",
    "list_profiles",
    "load_profile",
    "parse_profile",
    "user_profiles_dir",
]

DEFAULT_PROFILE = "local"
DEFAULT_CLUSTER = "default"  # the one cluster of a profile with a [kubernetes] table only
Backend = Literal["local", "kubernetes"]
RouteKind = Literal["Ingress", "HTTPRoute", "none"]
OnFailure = Literal["rollback-wave", "rollback-all", "pause"]
MetricsSourceKind = Literal["auto", "direct", "pod-proxy", "prometheus"]
# Who scales a deployment that `fleetdeck autoscale` was asked to: the HPA controller on its
# own (CPU through metrics-server, req/s through a custom-metrics adapter such as
# prometheus-adapter), KEDA (a ScaledObject with a Prometheus trigger; KEDA owns the HPA), or
# the local runtime's agent.
AutoscaleEngine = Literal["hpa", "keda", "local"]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # fullmatch: "$" passes a final "\n"


# A Prometheus duration: units largest first, each at most once (``90s``, ``1m``, ``1h30m``).
PROMETHEUS_DURATION = re.compile(
    r"(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?"
)
# A Prometheus label name (what [metrics] namespace_label/deployment_label put into PromQL).
PROMETHEUS_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


@dataclass(frozen=True)
class AutoscalingSettings:
    """``[autoscaling]``: which engine `fleetdeck autoscale` configures on a cluster, and what
    KEDA needs for its Prometheus trigger on the predictors' request rate."""

    engine: AutoscaleEngine = "hpa"  # "local" on a local profile
    # KEDA: the Prometheus KEDA's operator queries (from inside the cluster, usually); None
    # for the other engines.
    prometheus_url: str | None = None
    rate_window: str = "1m"  # KEDA: the rate()'s range over the request counter
    polling_seconds: int = 15  # KEDA: the ScaledObject's pollingInterval


@dataclass(frozen=True)
class KubernetesSettings:
    context: str | None  # None: the kubeconfig's current context
    kubeconfig: Path | None  # None: $KUBECONFIG or ~/.kube/config, as the client decides
    namespaces: tuple[str, ...]  # (): all namespaces


@dataclass(frozen=True)
class ClusterSettings:
    """One Kubernetes cluster of a profile: a deployment there is ``name/namespace/deployment``.

    A profile with a ``[kubernetes]`` table only has one, named :data:`DEFAULT_CLUSTER`; each
    ``[[clusters]]`` entry names one more, taking what it does not say (kubeconfig, namespaces,
    metrics, store, read_only) from the profile."""

    name: str  # a DNS-1123 label, unique in the profile
    kubernetes: KubernetesSettings
    metrics: MetricsSettings
    store: StoreSettings
    read_only: bool
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)


@dataclass(frozen=True)
class StoreSettings:
    root: str  # a path, file:// or hdfs://host:webhdfs-port/path


@dataclass(frozen=True)
class Images:
    predictor: str
    training: str


@dataclass(frozen=True)
class Resources:
    requests: Mapping[str, str]
    limits: Mapping[str, str]


@dataclass(frozen=True)
class Autoscale:
    min_replicas: int
    max_replicas: int
    cpu_percent: int


@dataclass(frozen=True)
class PredictorSettings:
    replicas: int = 2
    port: int = 8080
    drain_seconds: float = 5.0
    max_batch_size: int = 64
    batch_timeout_ms: float = 0.0
    resources: Resources = field(
        default_factory=lambda: Resources(
            requests={"cpu": "500m", "memory": "512Mi"}, limits={"cpu": "2", "memory": "1Gi"}
        )
    )
    autoscale: Autoscale | None = None


@dataclass(frozen=True)
class RouteSettings:
    kind: RouteKind = "Ingress"
    host: str | None = None  # None: match any host
    ingress_class: str | None = None
    gateway: str | None = None
    gateway_namespace: str | None = None  # None: the route's own namespace


@dataclass(frozen=True)
class Toleration:
    key: str | None
    operator: Literal["Exists", "Equal"]
    value: str | None
    effect: str | None
    toleration_seconds: int | None


@dataclass(frozen=True)
class TrainingSettings:
    gpus: int = 0
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    backoff_limit: int = 0
    active_deadline_seconds: int | None = 86400  # None: no deadline (0 in the profile)
    ttl_seconds_after_finished: int = 86400
    code: str = ""  # FLEETDECK_TRAINING_CODE for start.sh; "" = the image's own code


@dataclass(frozen=True)
class SloRule:
    """``[[slo.rules]]``: other limits for a model's deployments, a namespace's, or both."""

    model: str | None = None
    namespace: str | None = None
    p99_ms: float | None = None  # None: the next rule's, or the default
    error_percent: float | None = None

    def matches(self, model: str, namespace: str) -> bool:
        return self.model in (None, model) and self.namespace in (None, namespace)

    @property
    def specificity(self) -> int:
        return (self.model is not None) * 2 + (self.namespace is not None)


@dataclass(frozen=True)
class SloSettings:
    """What a serving deployment must meet: p99 latency and error percentage, with other
    limits per model or namespace (``[[slo.rules]]``; the most specific rule that sets a
    limit wins: model and namespace, then model, then namespace, then the defaults)."""

    p99_ms: float = 250.0
    error_percent: float = 1.0
    rules: tuple[SloRule, ...] = ()

    def limits(self, model: str, namespace: str) -> tuple[float, float]:
        """(p99 ms, error %) that a deployment of ``model`` in ``namespace`` must stay under."""
        matching = sorted(
            (r for r in self.rules if r.matches(model, namespace)),
            key=lambda r: r.specificity,
            reverse=True,
        )
        p99 = next((r.p99_ms for r in matching if r.p99_ms is not None), self.p99_ms)
        errors = next(
            (r.error_percent for r in matching if r.error_percent is not None), self.error_percent
        )
        return p99, errors


_DEFAULT_WAVES = (Quota(count=1), Quota(percent=10), Quota(percent=50), Quota(percent=100))
_HALT_AFTER_ONE = Quota(count=1)


@dataclass(frozen=True)
class BatchSettings:
    waves: tuple[Quota, ...] = _DEFAULT_WAVES
    max_parallel: int = 10
    halt_after: Quota = _HALT_AFTER_ONE
    bake_seconds: float = 60.0
    on_failure: OnFailure = "rollback-wave"

    def wave_sizes(self, total: int) -> list[int]:
        """Per-wave target counts for ``total`` targets, empty waves dropped."""
        sizes: list[int] = []
        done = 0
        for wave in self.waves:
            upto = max(wave.of(total), done)
            if upto > done:
                sizes.append(upto - done)
            done = upto
        return sizes


@dataclass(frozen=True)
class MetricsSettings:
    """Where live metrics come from (console/metrics). ``auto``: Prometheus when a URL is
    given, else the pod proxy (kubernetes) or a direct scrape (local)."""

    source: MetricsSourceKind = "auto"
    prometheus_url: str | None = None
    namespace_label: str = "namespace"  # Prometheus labels naming a series' deployment
    deployment_label: str = "app_kubernetes_io_name"
    window_seconds: float = 30.0
    interval_seconds: float = 2.0
    scrape_timeout_seconds: float = 2.0
    scrape_concurrency: int = 16

    def resolved_source(self, backend: str) -> MetricsSourceKind:
        if self.source != "auto":
            return self.source
        if self.prometheus_url:
            return "prometheus"
        return "pod-proxy" if backend == "kubernetes" else "direct"


@dataclass(frozen=True)
class LocalSettings:
    gateway_port: int = 8600
    # A rollout whose new revision is not ready this long is Failed (a Deployment's
    # progressDeadlineSeconds).
    progress_deadline_seconds: float = 300.0
    training_parallel: int = 2  # training and scoring jobs run at once; the rest wait


@dataclass(frozen=True)
class DeckSettings:
    """The deck's look per profile: ``[deck] context_colors = { "kwok-admin" = "red" }`` colours
    the header's context name, so that production is never mistaken for staging."""

    context_colors: Mapping[str, str] = field(default_factory=dict)
    # A terminal bell and a desktop notification (OSC 9 and OSC 777, which pass through SSH
    # and tmux) when an SLO breach starts or a batch halts.
    notify: bool = True


@dataclass(frozen=True)
class Profile:
    name: str
    source: Path | None  # None: the built-in ``local`` defaults, no file found
    backend: Backend
    read_only: bool
    store: StoreSettings
    images: Images
    predictor: PredictorSettings
    route: RouteSettings
    training: TrainingSettings
    slo: SloSettings
    batch: BatchSettings
    kubernetes: KubernetesSettings | None = None  # set exactly when backend == "kubernetes"
    local: LocalSettings | None = None  # set exactly when backend == "local"
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    # The clusters a kubernetes profile watches and acts on, in the profile's order; () for
    # the local runtime.
    clusters: tuple[ClusterSettings, ...] = ()

    def for_cluster(self, name: str) -> Profile:
        """This profile on its cluster ``name`` alone: that cluster's context, kubeconfig,
        namespaces, store, metrics and read-only flag in the profile's own fields."""
        cluster = next((c for c in self.clusters if c.name == name), None)
        if cluster is None:
            known = ", ".join(c.name for c in self.clusters) or "none: it runs locally"
            raise ProfileError(
                f"profile {self.name!r} has no cluster {name!r} (its clusters: {known})"
            )
        return dataclasses.replace(
            self,
            kubernetes=cluster.kubernetes,
            store=cluster.store,
            metrics=cluster.metrics,
            read_only=cluster.read_only,
            autoscaling=cluster.autoscaling,
            clusters=(cluster,),
        )

    def on_contexts(self, contexts: list[str]) -> Profile:
        """This one-cluster profile widened to one cluster per kube context (``--context
        a,b``), each named by its context and taking the rest from the profile."""
        if self.kubernetes is None:
            raise ProfileError(
                f"profile {self.name!r} runs locally: --context needs a Kubernetes profile"
            )
        if len(self.clusters) > 1:
            names = ", ".join(c.name for c in self.clusters)
            raise ProfileError(
                f"profile {self.name!r} names its clusters ({names}), each with its context: "
                "--context a,b widens a profile of one cluster; use --cluster NAME"
            )
        clusters = []
        for context in contexts:
            try:
                name = check_label(context, "cluster name")
            except InvalidName as exc:
                raise ProfileError(
                    f"context {context!r} cannot name a cluster ({exc}): name it in the "
                    "profile's [[clusters]] instead"
                ) from None
            settings = dataclasses.replace(self.kubernetes, context=context)
            clusters.append(
                ClusterSettings(
                    name, settings, self.metrics, self.store, self.read_only, self.autoscaling
                )
            )
        return dataclasses.replace(self, clusters=tuple(clusters))

    deck: DeckSettings = field(default_factory=DeckSettings)
    # The engine `fleetdeck autoscale` configures: on a profile naming several clusters, its
    # first cluster's until the profile is narrowed to one (:meth:`for_cluster`).
    autoscaling: AutoscalingSettings = field(default_factory=AutoscalingSettings)


@dataclass(frozen=True)
class ProfileFile:
    """A profile found on disk, not yet loaded (loading may fail)."""

    name: str
    path: Path
    origin: Literal["user", "bundled"]


# -- where profiles live ---------------------------------------------------------------------


def bundled_profiles_dir() -> Path | None:
    """The checkout's ``profiles/`` folder, else the one a wheel installs under
    ``<prefix>/share/fleetdeck/``; None when neither exists."""
    for folder in (
        Path(console.__file__).resolve().parent.parent / "profiles",
        Path(sys.prefix) / "share" / "fleetdeck" / "profiles",
    ):
        if folder.is_dir():
            return folder
    return None


def user_profiles_dir() -> Path:
    return paths.config_home() / "profiles"


def default_profile_name() -> str:
    return os.environ.get("FLEETDECK_PROFILE", "").strip() or DEFAULT_PROFILE


def list_profiles() -> list[ProfileFile]:
    """Every profile by name, a user's file winning over a bundled one; sorted by name."""
    found: dict[str, ProfileFile] = {}
    folders: list[tuple[Path | None, Literal["user", "bundled"]]] = [
        (bundled_profiles_dir(), "bundled"),
        (user_profiles_dir(), "user"),  # later wins
    ]
    for folder, origin in folders:
        if folder is None or not folder.is_dir():
            continue
        for path in folder.glob("*.toml"):
            if _NAME.fullmatch(path.stem):
                found[path.stem] = ProfileFile(path.stem, path, origin)
    return [found[name] for name in sorted(found)]


def load_profile(name: str | None = None) -> Profile:
    """The profile ``name`` (default: :func:`default_profile_name`), validated."""
    name = default_profile_name() if name is None else name
    if not _NAME.fullmatch(name):
        raise ProfileError(f"{name!r}: not a profile name (letters, digits, '.', '_', '-')")
    user = user_profiles_dir() / f"{name}.toml"
    bundled = bundled_profiles_dir()
    candidates = [user] + ([bundled / f"{name}.toml"] if bundled else [])
    for path in candidates:
        if path.is_file():
            return _load_file(name, path)
    if name == DEFAULT_PROFILE:
        # The default needs nothing on disk: an installed console still works out of the box.
        return parse_profile(name, {"backend": "local"}, source=None)
    looked = ", ".join(display_path(p.parent) for p in candidates)
    if bundled is None:
        looked += " (no bundled profiles folder next to the package)"
    raise ProfileError(f"no profile named {name!r}; looked in {looked}")


def _load_file(name: str, path: Path) -> Profile:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{display_path(path)}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ProfileError(f"{display_path(path)}: cannot read: {exc.strerror}") from None
    return parse_profile(name, data, source=path)


# -- validation ------------------------------------------------------------------------------


def parse_profile(name: str, data: Mapping[str, object], *, source: Path | None) -> Profile:
    """Build a :class:`Profile` from parsed TOML, raising :class:`ProfileError` on any problem."""
    top = Table(data, display_path(source) if source else f"<built-in {name}>")
    backend = cast(Backend, top.require("backend", '"local" | "kubernetes"'))
    if backend not in ("local", "kubernetes"):
        raise top.bad("backend", '"local" | "kubernetes"', backend)
    is_k8s = backend == "kubernetes"
    if is_k8s and not top.has("kubernetes") and not top.has("clusters"):
        raise top.error(
            "kubernetes", 'missing; required when backend = "kubernetes" (or [[clusters]])'
        )
    for section, wanted in (("kubernetes", "kubernetes"), ("local", "local")):
        if top.has(section) and backend != wanted:
            raise top.error(section, f'only for backend = "{wanted}"')
    k8s = _kubernetes(top.table("kubernetes"))
    local = _local(top.table("local"))
    read_only = top.boolean("read_only", False)
    store = _store(top.table("store"), is_k8s)
    metrics = _metrics(top.table("metrics"), backend)
    scaling = _autoscaling_keys(top.table("autoscaling"))
    cluster_tables = top.tables("clusters")
    if cluster_tables and not is_k8s:
        raise top.error("clusters", 'only for backend = "kubernetes"')
    defaults = ClusterSettings(DEFAULT_CLUSTER, k8s, metrics, store, read_only)
    if not is_k8s:
        autoscaling = _local_autoscaling(scaling)
        clusters: tuple[ClusterSettings, ...] = ()
    elif scaling.engine == "local":
        raise scaling.table.bad("engine", _KUBERNETES_ENGINES, scaling.engine)
    elif cluster_tables:
        clusters = _clusters(top, cluster_tables, defaults, scaling)
        autoscaling = clusters[0].autoscaling
        if scaling.keda_keys() and all(c.autoscaling.engine != "keda" for c in clusters):
            raise scaling.table.error(scaling.keda_keys()[0], _ONLY_FOR_KEDA)
    else:
        autoscaling = _cluster_autoscaling(scaling, None, metrics)
        clusters = (dataclasses.replace(defaults, autoscaling=autoscaling),)
    profile = Profile(
        name=name,
        source=source,
        backend=backend,
        read_only=read_only,
        store=store,
        images=_images(top.table("images")),
        predictor=_predictor(top.table("predictor")),
        route=_route(top.table("route")),
        training=_training(top.table("training")),
        slo=_slo(top.table("slo")),
        batch=_batch(top.table("batch")),
        kubernetes=k8s if is_k8s else None,
        local=None if is_k8s else local,
        metrics=metrics,
        clusters=clusters,
        deck=_deck(top.table("deck")),
        autoscaling=autoscaling,
    )
    top.finish()
    return profile


def _deck(t: Table) -> DeckSettings:
    from rich.color import Color, ColorParseError  # Rich's names: what the deck can draw

    colors = t.string_map("context_colors")
    for context, color in colors.items():
        try:
            Color.parse(color)
        except ColorParseError:
            raise t.error(
                f"context_colors.{context}",
                f"{color!r} is not a colour (a name such as red, or #rrggbb)",
            ) from None
    notify = t.boolean("notify", True)
    t.finish()
    return DeckSettings(colors, notify)


def _kubernetes(t: Table) -> KubernetesSettings:
    kubeconfig = t.optional_expanded("kubeconfig", home=True)
    settings = KubernetesSettings(
        context=t.optional_string("context") or None,
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        namespaces=t.strings("namespaces", ()),
    )
    t.finish()
    return settings


def _clusters(
    top: Table, tables: list[Table], defaults: ClusterSettings, scaling: _AutoscalingKeys
) -> tuple[ClusterSettings, ...]:
    clusters: list[ClusterSettings] = []
    for t in tables:
        raw_name = t.require("name", "a cluster name (a DNS-1123 label such as eu-west)")
        try:
            name = check_label(raw_name, "cluster name")
        except InvalidName as exc:
            raise t.error("name", str(exc)) from None
        if any(c.name == name for c in clusters):
            raise t.error("name", f"cluster {name!r} is named twice")
        context = t.require("context", "the kubeconfig context of this cluster")
        if not isinstance(context, str) or not context:
            raise t.bad("context", "a kubeconfig context name", context)
        kubeconfig = t.optional_expanded("kubeconfig", home=True)
        inherited = defaults.kubernetes
        kubernetes = KubernetesSettings(
            context=context,
            kubeconfig=Path(kubeconfig) if kubeconfig else inherited.kubeconfig,
            namespaces=t.strings("namespaces", inherited.namespaces),
        )
        metrics = _metrics(t.table("metrics"), "kubernetes") if t.has("metrics") else None
        store = _store(t.table("store"), True) if t.has("store") else None
        own_scaling = _autoscaling_keys(t.table("autoscaling"))
        clusters.append(
            ClusterSettings(
                name=name,
                kubernetes=kubernetes,
                metrics=metrics or defaults.metrics,
                store=store or defaults.store,
                read_only=t.boolean("read_only", defaults.read_only),
                autoscaling=_cluster_autoscaling(own_scaling, scaling, metrics or defaults.metrics),
            )
        )
        t.finish()
    return tuple(clusters)


def _store(t: Table, required: bool) -> StoreSettings:
    if required:
        t.require("root", "a store root (a path, file:// or hdfs:// URL)")
    root = t.optional_expanded("root", home=True)
    if root is None:
        root = str(paths.data_home() / "local" / "store")
    if not root:
        raise t.bad("root", "a store root (a path, file:// or hdfs:// URL)", root)
    t.finish()
    return StoreSettings(root=root)


def _images(t: Table) -> Images:
    tag = console.__version__
    predictor = t.expanded("predictor", f"fleetdeck-predictor:{tag}", home=False)
    training = t.expanded("training", f"fleetdeck-training:{tag}", home=False)
    t.finish()
    return Images(predictor=predictor, training=training)


def _resource_list(t: Table, name: str, default: Mapping[str, str]) -> Mapping[str, str]:
    if not t.has(name):
        t.raw(name)
        return default
    values = t.string_map(name)
    for resource, quantity in values.items():
        if not RESOURCE_NAME.fullmatch(resource):
            raise t.error(f"{name}.{resource}", "expected a resource name such as cpu or memory")
        if not QUANTITY.match(quantity):
            expected = 'a Kubernetes quantity such as "500m", "2" or "512Mi"'
            raise t.bad(f"{name}.{resource}", expected, quantity)
    return values


def _predictor(t: Table) -> PredictorSettings:
    defaults = PredictorSettings()
    res = t.table("resources")
    resources = Resources(
        requests=_resource_list(res, "requests", defaults.resources.requests),
        limits=_resource_list(res, "limits", defaults.resources.limits),
    )
    res.finish()
    autoscale = None
    if t.has("autoscale"):
        a = t.table("autoscale")
        autoscale = Autoscale(
            min_replicas=a.integer("min_replicas", 1, low=1),
            max_replicas=a.integer("max_replicas", 10, low=1),
            cpu_percent=a.integer("cpu_percent", 70, low=1),
        )
        if autoscale.max_replicas < autoscale.min_replicas:
            expected = f"an integer >= min_replicas ({autoscale.min_replicas})"
            raise a.bad("max_replicas", expected, autoscale.max_replicas)
        a.finish()
    else:
        t.raw("autoscale")
    settings = PredictorSettings(
        replicas=t.integer("replicas", defaults.replicas),
        port=t.integer("port", defaults.port, low=1, high=65535),
        drain_seconds=t.number("drain_seconds", defaults.drain_seconds),
        max_batch_size=t.integer("max_batch_size", defaults.max_batch_size, low=1),
        batch_timeout_ms=t.number("batch_timeout_ms", defaults.batch_timeout_ms),
        resources=resources,
        autoscale=autoscale,
    )
    t.finish()
    return settings


def _route(t: Table) -> RouteSettings:
    kind = cast(RouteKind, t.string("kind", "Ingress", choices=("Ingress", "HTTPRoute", "none")))
    settings = RouteSettings(
        kind=kind,
        host=t.optional_string("host") or None,
        ingress_class=t.optional_string("ingress_class") or None,
        gateway=t.optional_string("gateway") or None,
        gateway_namespace=t.optional_string("gateway_namespace") or None,
    )
    # A setting for another route kind is a misunderstanding worth pointing out, not ignoring.
    for key, only in (
        ("ingress_class", "Ingress"),
        ("gateway", "HTTPRoute"),
        ("gateway_namespace", "HTTPRoute"),
    ):
        if t.has(key) and kind != only:
            raise t.error(key, f'only for kind = "{only}" (kind is "{kind}")')
    if kind == "HTTPRoute" and settings.gateway is None:
        raise t.error("gateway", 'missing; expected the Gateway\'s name when kind = "HTTPRoute"')
    t.finish()
    return settings


def _toleration(t: Table) -> Toleration:
    operator = t.string("operator", "Equal", choices=("Exists", "Equal"))
    effects = ("NoSchedule", "PreferNoSchedule", "NoExecute")
    toleration = Toleration(
        key=t.optional_string("key") or None,
        operator=cast(Literal["Exists", "Equal"], operator),
        value=t.optional_string("value"),
        effect=t.optional_string("effect", choices=effects),
        toleration_seconds=t.optional_integer("toleration_seconds"),
    )
    # The API server rejects these combinations; say so before anything is sent.
    if operator == "Exists" and toleration.value:
        raise t.error("value", 'must be empty when operator = "Exists"')
    if operator == "Equal" and toleration.key is None:
        raise t.error("key", 'missing; required when operator = "Equal"')
    if toleration.toleration_seconds is not None and toleration.effect != "NoExecute":
        raise t.error("toleration_seconds", 'only for effect = "NoExecute"')
    t.finish()
    return toleration


def _training(t: Table) -> TrainingSettings:
    defaults = TrainingSettings()
    settings = TrainingSettings(
        gpus=t.integer("gpus", defaults.gpus),
        node_selector=t.string_map("node_selector"),
        tolerations=tuple(_toleration(item) for item in t.tables("tolerations")),
        backoff_limit=t.integer("backoff_limit", defaults.backoff_limit),
        # 0 means no deadline: Kubernetes itself rejects 0, so it cannot mean anything else.
        active_deadline_seconds=t.integer("active_deadline_seconds", 86400) or None,
        ttl_seconds_after_finished=t.integer("ttl_seconds_after_finished", 86400),
        code=t.expanded("code", "", home=False),
    )
    t.finish()
    return settings


def _slo(t: Table) -> SloSettings:
    rules = []
    for r in t.tables("rules"):
        model = r.optional_string("model")
        namespace = r.optional_string("namespace")
        if model is None and namespace is None:
            raise r.error("model", "a rule names a model, a namespace or both")
        p99 = r.number("p99_ms", -1.0, low=0.001) if r.has("p99_ms") else None
        errors = r.number("error_percent", -1.0, high=100.0) if r.has("error_percent") else None
        if p99 is None and errors is None:
            raise r.error("p99_ms", "a rule sets p99_ms, error_percent or both")
        r.finish()
        rules.append(SloRule(model, namespace, p99, errors))
    settings = SloSettings(
        p99_ms=t.number("p99_ms", SloSettings.p99_ms, low=0.001),
        error_percent=t.number("error_percent", SloSettings.error_percent, high=100.0),
        rules=tuple(rules),
    )
    t.finish()
    return settings


def _batch(t: Table) -> BatchSettings:
    defaults = BatchSettings()
    waves = defaults.waves
    text = t.optional_string("waves")
    if text is not None:
        try:
            waves = parse_waves(text)
        except ValueError as exc:
            raise t.bad("waves", str(exc), text) from None
    halt_after = defaults.halt_after
    raw_halt = t.raw("halt_after")
    if raw_halt is not None:
        expected = 'a count such as 1 or a percentage such as "10%"'
        if isinstance(raw_halt, int) and not isinstance(raw_halt, bool) and raw_halt >= 1:
            halt_after = Quota(count=raw_halt)
        elif isinstance(raw_halt, str):
            try:
                halt_after = parse_quota(raw_halt)
            except ValueError:
                raise t.bad("halt_after", expected, raw_halt) from None
            if halt_after.count == 0:
                raise t.bad("halt_after", expected, raw_halt)
        else:
            raise t.bad("halt_after", expected, raw_halt)
    choices = ("rollback-wave", "rollback-all", "pause")
    settings = BatchSettings(
        waves=waves,
        max_parallel=t.integer("max_parallel", defaults.max_parallel, low=1),
        halt_after=halt_after,
        bake_seconds=t.number("bake_seconds", defaults.bake_seconds),
        on_failure=cast(OnFailure, t.string("on_failure", defaults.on_failure, choices=choices)),
    )
    t.finish()
    return settings


def _metrics(t: Table, backend: str) -> MetricsSettings:
    defaults = MetricsSettings()
    choices = ("auto", "direct", "pod-proxy", "prometheus")
    source = cast(MetricsSourceKind, t.string("source", defaults.source, choices=choices))
    url = t.expanded("prometheus_url", "", home=False) or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise t.bad("prometheus_url", "an http:// or https:// URL", url)
    if source == "prometheus" and url is None:
        raise t.error("prometheus_url", 'missing; required when source = "prometheus"')
    if source == "pod-proxy" and backend != "kubernetes":
        raise t.error("source", '"pod-proxy" needs backend = "kubernetes"')
    settings = MetricsSettings(
        source=source,
        prometheus_url=url,
        namespace_label=_label_name(t, "namespace_label", defaults.namespace_label),
        deployment_label=_label_name(t, "deployment_label", defaults.deployment_label),
        window_seconds=t.number("window_seconds", defaults.window_seconds, low=1.0),
        interval_seconds=t.number("interval_seconds", defaults.interval_seconds, low=0.1),
        scrape_timeout_seconds=t.number(
            "scrape_timeout_seconds", defaults.scrape_timeout_seconds, low=0.1
        ),
        scrape_concurrency=t.integer("scrape_concurrency", defaults.scrape_concurrency, low=1),
    )
    if settings.window_seconds < 2 * settings.interval_seconds:
        expected = f"a number >= 2 × interval_seconds ({2 * settings.interval_seconds:g})"
        raise t.bad("window_seconds", expected, settings.window_seconds)
    t.finish()
    return settings


def _local(t: Table) -> LocalSettings:
    defaults = LocalSettings()
    settings = LocalSettings(
        gateway_port=t.integer("gateway_port", defaults.gateway_port, low=1, high=65535),
        progress_deadline_seconds=t.number(
            "progress_deadline_seconds", defaults.progress_deadline_seconds, low=1.0
        ),
        training_parallel=t.integer("training_parallel", defaults.training_parallel, low=1),
    )
    t.finish()
    return settings


def _label_name(t: Table, name: str, default: str) -> str:
    """A Prometheus label name: it goes into PromQL as it is."""
    value = t.string(name, default)
    if not PROMETHEUS_LABEL.fullmatch(value):
        expected = "a Prometheus label name (letters, digits and _, not starting with a digit)"
        raise t.bad(name, expected, value)
    return value


_KEDA_KEYS = ("prometheus_url", "rate_window", "polling_seconds")
_KUBERNETES_ENGINES = '"hpa" | "keda" ("local" is the local runtime\'s, for backend = "local")'
_ONLY_FOR_KEDA = 'only for engine = "keda" (the other engines query no Prometheus themselves)'
_KEDA_URL = (
    'missing; required when engine = "keda": the Prometheus address KEDA\'s operator queries '
    "(usually in-cluster, such as http://prometheus.monitoring.svc:9090), or set "
    "[metrics] prometheus_url"
)


@dataclass(frozen=True)
class _AutoscalingKeys:
    """One ``[autoscaling]`` table as written (None: not given), before defaults and
    inheritance (a ``[[clusters]]`` entry's table takes what it leaves out from the profile's)."""

    table: Table
    engine: str | None
    prometheus_url: str | None
    rate_window: str | None
    polling_seconds: int | None

    def keda_keys(self) -> list[str]:
        return [key for key in _KEDA_KEYS if getattr(self, key) is not None]


def _autoscaling_keys(t: Table) -> _AutoscalingKeys:
    engine = t.optional_string("engine", choices=("hpa", "keda", "local"))
    url = t.optional_expanded("prometheus_url", home=False)
    if url is not None and not _is_http_url(url):
        raise t.bad("prometheus_url", "an http:// or https:// URL", url)
    window = t.optional_string("rate_window")
    if window is not None and not (
        PROMETHEUS_DURATION.fullmatch(window) and any(c in "123456789" for c in window)
    ):
        expected = 'a Prometheus duration above 0 such as "30s", "1m" or "2m30s"'
        raise t.bad("rate_window", expected, window)
    polling = t.optional_integer("polling_seconds", low=1, high=3600)
    t.finish()
    return _AutoscalingKeys(t, engine, url, window, polling)


def _is_http_url(url: str) -> bool:
    from urllib.parse import urlsplit

    if not url.startswith(("http://", "https://")) or not url.isprintable() or " " in url:
        return False
    try:
        return bool(urlsplit(url).hostname)
    except ValueError:
        return False


def _local_autoscaling(keys: _AutoscalingKeys) -> AutoscalingSettings:
    """A local profile's: the local runtime's agent is the autoscaler, nothing to set."""
    if keys.engine not in (None, "local"):
        expected = (
            '"local" (the local runtime\'s agent is the autoscaler; "hpa" and "keda" need '
            'backend = "kubernetes")'
        )
        raise keys.table.bad("engine", expected, keys.engine)
    given = keys.keda_keys()
    if given:
        raise keys.table.error(given[0], 'only for engine = "keda" (backend = "kubernetes")')
    return AutoscalingSettings(engine="local")


def _cluster_autoscaling(
    keys: _AutoscalingKeys, inherited: _AutoscalingKeys | None, metrics: MetricsSettings
) -> AutoscalingSettings:
    """A cluster's: its own table's keys, else the profile's ``[autoscaling]`` (``inherited``,
    for a ``[[clusters]]`` entry), else the defaults; KEDA's Prometheus defaults to the
    cluster's ``[metrics] prometheus_url``."""
    outer = inherited or _AutoscalingKeys(keys.table, None, None, None, None)
    engine = keys.engine or outer.engine or "hpa"
    if engine == "local":
        table = keys.table if keys.engine is not None else outer.table
        raise table.bad("engine", _KUBERNETES_ENGINES, engine)
    if engine != "keda":
        given = keys.keda_keys()
        if given:
            raise keys.table.error(given[0], _ONLY_FOR_KEDA)
        return AutoscalingSettings(engine="hpa")
    defaults = AutoscalingSettings()
    url = keys.prometheus_url or outer.prometheus_url or metrics.prometheus_url
    if url is None:
        raise keys.table.error("prometheus_url", _KEDA_URL)
    return AutoscalingSettings(
        engine="keda",
        prometheus_url=url,
        rate_window=keys.rate_window or outer.rate_window or defaults.rate_window,
        polling_seconds=keys.polling_seconds or outer.polling_seconds or defaults.polling_seconds,
    )
