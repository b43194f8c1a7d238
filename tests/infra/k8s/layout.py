"""Pinned versions and where everything lives on disk.

The versions form one tested set: KWOK v0.8.0 is built against Kubernetes 1.36 client libraries
and maps Kubernetes 1.34-1.36 to etcd 3.6, so we pin the newest 1.36 patch and the newest etcd
3.6 patch the Go module proxy serves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBE_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"

CLUSTER_NAME = "fleetdeck"

# The binaries each build step produces, in the order the cluster needs them.
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
KWOK_COMMANDS = ("kwok", "kwokctl")

# Where the kwok/ folder (stages, RBAC, node manifests) lives in the checkout.
KWOK_ASSETS = Path(__file__).resolve().parent.parent / "kwok"


def cache_root() -> Path:
    """``${XDG_CACHE_HOME:-~/.cache}/fleetdeck``: shared by every checkout on this machine."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleetdeck"


@dataclass(frozen=True)
class Layout:
    """Every path the build and the cluster use, derived from one cache root."""

    root: Path

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
    def run_dir(self) -> Path:
        """State of the running cluster: removed by ``down``."""
        return self.root / "run" / "cluster"

    @property
    def kwok_workdir(self) -> Path:
        """``KWOK_WORKDIR`` for kwokctl, so nothing lands in ``~/.kwok``."""
        return self.run_dir / "kwok"

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's own folder for our cluster (pids, logs, pki, kwokctl.yaml)."""
        return self.kwok_workdir / "clusters" / CLUSTER_NAME

    @property
    def kubeconfig(self) -> Path:
        """The kubeconfig we write: contexts kwok-admin (default), kwok-oncall, kwok-viewer."""
        return self.run_dir / "kubeconfig"

    @property
    def logs_dir(self) -> Path:
        """Container log files KWOK serves: ``<namespace>/<pod>/<container>.log``."""
        return self.run_dir / "pod-logs"

    @property
    def tokens_file(self) -> Path:
        return self.run_dir / "tokens.csv"

    @property
    def lock_file(self) -> Path:
        return self.root / "run" / "cluster.lock"


def default_layout() -> Layout:
    return Layout(cache_root())
