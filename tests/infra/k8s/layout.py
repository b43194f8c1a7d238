"""Pinned versions and where everything lives on disk.

The versions form one tested set: KWOK v0.8.0 is built against Kubernetes 1.36 client libraries
and maps Kubernetes 1.34-1.36 to etcd 3.6, so we pin the newest 1.36 patch and the newest etcd
3.6 patch the Go module proxy serves.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
# The autoscaling pipeline (issue 20). metrics-server v0.8.0 is the approved release (v0.9.0 is
# served but not approved). KEDA v2.21.1 asks for Go 1.27.4, newer than this machine's 1.26 and
# than the one approved newer toolchain, so we pin the newest release that builds with Go 1.26.
METRICS_SERVER_VERSION = "v0.8.0"
KEDA_VERSION = "v2.21.0"

# The name of the first cluster (``tests/infra/cluster up`` without ``--name``): its kwokctl
# name, run folder and lock keep the paths every profile and engineer already uses.
DEFAULT_NAME = "fleetdeck"
# Further clusters are called ``fleetdeck-<name>`` by kwokctl; the name must stay a DNS-1123
# label after that prefix, since kwokctl puts it in kubeconfig cluster and context names.
KWOKCTL_PREFIX = "fleetdeck-"
NAME_PATTERN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 63 - len(KWOKCTL_PREFIX)

# The binaries each build step produces, in the order the cluster needs them.
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KWOK_COMMANDS = ("kwok", "kwokctl")
METRICS_SERVER_COMMANDS = ("metrics-server",)
KEDA_COMMANDS = ("keda-operator", "keda-adapter")

# Where the kwok/ folder (stages, RBAC, node manifests) lives in the checkout.
KWOK_ASSETS = Path(__file__).resolve().parent.parent / "kwok"


def check_cluster_name(name: str) -> str:
    """``name`` if it is a DNS-1123 label short enough to be prefixed; ValueError otherwise."""
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"cluster name {name!r} is not a DNS-1123 label of at most {MAX_NAME_LENGTH} "
            "characters (lower-case letters, digits and '-', starting and ending alphanumeric)"
        )
    return name


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/fleetdeck``: shared by every checkout on this machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetdeck"


@dataclass(frozen=True)
class Layout:
    """Every path the build and one named cluster use, derived from one cache root.

    The binaries and the Go caches are shared by every cluster; the run folder, kwokctl's
    workdir, kubeconfig and lock are the cluster's own.
    """

    root: Path
    name: str = DEFAULT_NAME

    def __post_init__(self) -> None:
        check_cluster_name(self.name)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_NAME

    @property
    def kwokctl_name(self) -> str:
        """The cluster's name for kwokctl (``--name``): ``fleetdeck`` or ``fleetdeck-<name>``."""
        return self.name if self.is_default else KWOKCTL_PREFIX + self.name

    @property
    def run_root(self) -> Path:
        """Where every cluster's run folder and lock live."""
        return self.root / "run"

    @property
    def go_dir(self) -> Path:
        return self.root / "go"

    def bin_dir(self, component: str, version: str) -> Path:
        """Final home of a component's binaries; it exists only once a build completed."""
        return self.root / component / version / "bin"

    def src_dir(self, component: str, version: str) -> Path:
        """The generated wrapper module for a component (kept for inspection, rebuilt at will)."""
        return self.root / component / version / "src"

    @property
    def kube_bin(self) -> Path:
        return self.bin_dir("k8s", KUBE_VERSION)

    @property
    def etcd_bin(self) -> Path:
        return self.bin_dir("etcd", ETCD_VERSION)

    @property
    def kwok_bin(self) -> Path:
        return self.bin_dir("kwok", KWOK_VERSION)

    @property
    def metrics_server_bin(self) -> Path:
        return self.bin_dir("metrics-server", METRICS_SERVER_VERSION)

    @property
    def keda_bin(self) -> Path:
        return self.bin_dir("keda", KEDA_VERSION)

    @property
    def run_dir(self) -> Path:
        """State of the running cluster: removed by ``down``. ``run/cluster`` for the first
        cluster, ``run/cluster-<name>`` for the others."""
        return self.run_root / ("cluster" if self.is_default else f"cluster-{self.name}")

    @property
    def kwok_workdir(self) -> Path:
        """``KWOK_WORKDIR`` for kwokctl, so nothing lands in ``~/.kwok``."""
        return self.run_dir / "kwok"

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's own folder for our cluster (pids, logs, pki, kwokctl.yaml)."""
        return self.kwok_workdir / "clusters" / self.kwokctl_name

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig we write: contexts kwok-admin (default), kwok-oncall, kwok-viewer."""
        return self.run_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        """Container log files KWOK serves: ``<namespace>/<pod>/<container>.log``."""
        return self.run_dir / "pod-logs"

    @property
    def autoscaling_dir(self) -> Path:
        """The autoscaling pipeline's state (pids, logs, certificates, kubeconfig): under the
        run folder, so ``down`` removes it with the cluster."""
        return self.run_dir / "autoscaling"

    @property
    def tokens_file(self) -> Path:
        return self.run_dir / "tokens.csv"

    @property
    def lock_file(self) -> Path:
        """Serialises up/down of this cluster only: clusters start and stop independently."""
        return self.run_root / f"{self.run_dir.name}.lock"

    @property
    def ports_lock_file(self) -> Path:
        """Held while a named cluster picks its ports and starts, so two never pick the same."""
        return self.run_root / "cluster-ports.lock"

    def other_run_dirs(self) -> list[Path]:
        """The run folders of every other cluster under this cache root (running or not)."""
        return sorted(
            path
            for path in self.run_root.glob("cluster*")
            if path.is_dir() and path != self.run_dir
        )


def default_layout(name: str = DEFAULT_NAME) -> Layout:
    return Layout(cache_root(), name)
