"""Start, stop and inspect the test cluster (kwokctl, binary runtime, loopback only).

kwokctl forks every component as a plain process with a pid file under its cluster folder; we
keep that folder under the fleetdeck cache (``KWOK_WORKDIR``), add users with static tokens,
RBAC, the simulated nodes and the model namespaces, and write one kubeconfig with a context per
user. Several clusters run side by side, each named (see ``Layout``): its own run folder,
kwokctl workdir, ports, kubeconfig and lock; only the built binaries are shared. Stdlib only:
everything talks to the API server through the kubectl we built.
"""

from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import BuildError, ensure_built, say
from .layout import KWOK_ASSETS, Layout

if TYPE_CHECKING:
    from .autoscaling import AutoscalingPipeline

# Fixed model namespaces (oncall may act there) and one namespace where oncall may not.
MODEL_NAMESPACES = ("models", "models-staging")
PLATFORM_NAMESPACE = "platform"
USERS = ("admin", "oncall", "viewer")
DEFAULT_USER = "admin"

# The processes kwokctl forks, each with pids/<name>.pid in its cluster folder.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
)

# The ports kwokctl's binary runtime needs, as its configuration names them.
PORT_OPTIONS = (
    "etcdPort",
    "etcdPeerPort",
    "kubeApiserverPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "kwokControllerPort",
)
# Named clusters take their ports from blocks of PORT_BLOCK_SIZE starting here. kwokctl's own
# search (the first cluster's) walks down from 32767, so it never reaches these blocks, not even
# while a named cluster's API server is stopped and its port unbound for a moment (and the
# other way round: a named cluster never takes a port of the first one's stopped components).
NAMED_PORT_BASE = 31000
PORT_BLOCK_SIZE = 10
PORT_BLOCKS = 150

# A cluster other sessions share may be unhealthy for a moment because one of their tests
# stopped or froze its API server (and will start or thaw it itself): `up` waits this long for
# it to recover before restarting components or, failing that, recreating the cluster.
UNHEALTHY_GRACE_SECONDS = 60.0

# What a cluster is created with, beyond the components: ``up`` records it in the run folder
# and recreates a running cluster recorded with anything else (or nothing: one created before
# the record existed), so a change of creation flags takes effect on the next ``up``. Raise it
# whenever ``create`` or ``kwokctl_config`` changes in a way running clusters must pick up.
# 2: KWOK's Metric and (Cluster)ResourceUsage objects (simulated CPU for metrics-server), the
# API server's front-proxy (requestheader) flags for aggregated APIs, and a 5 s
# HorizontalPodAutoscaler sync period (issue 20: the autoscaling pipeline).
CLUSTER_GENERATION = "2"

# Container logs: a pod without a log file of its own is served this one.
DEFAULT_LOG_LINE = "kwok: no log file registered for this container (tests: append_log)"


class ClusterError(RuntimeError):
    """Starting or driving the cluster failed; the message says what to look at."""


def context_for(user: str) -> str:
    """The kubeconfig context acting as ``user`` (admin, oncall or viewer)."""
    if user not in USERS:
        raise ValueError(f"unknown user {user!r}; known: {', '.join(USERS)}")
    return f"kwok-{user}"


def read_tokens() -> dict[str, str]:
    """user -> bearer token, from the same tokens.csv the API server reads."""
    with (KWOK_ASSETS / "tokens.csv").open(newline="") as handle:
        return {row[1]: row[0] for row in csv.reader(handle) if row}


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.25) -> Any:
    """Poll ``check()`` until it returns something truthy; bounded, never a bare sleep."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass(frozen=True)
class ComponentState:
    name: str
    pid: int | None
    running: bool


@dataclass(frozen=True)
class ClusterState:
    components: list[ComponentState]
    api_ready: bool
    server: str | None

    @property
    def any_running(self) -> bool:
        return any(component.running for component in self.components)

    @property
    def healthy(self) -> bool:
        return self.api_ready and all(component.running for component in self.components)


class Cluster:
    """One named test cluster of this machine (per cache root and name)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    # ----- paths and processes -------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def kubectl_binary(self) -> Path:
        return self.layout.kube_bin / "kubectl"

    @property
    def bootstrap_kubeconfig(self) -> Path:
        """kwokctl's own kubeconfig (client certificate in system:masters): setup only."""
        return self.layout.cluster_dir / "kubeconfig.yaml"

    def pid_file(self, component: str) -> Path:
        return self.layout.cluster_dir / "pids" / f"{component}.pid"

    def component_pid(self, component: str) -> int | None:
        try:
            return int(self.pid_file(component).read_text().strip())
        except (OSError, ValueError):
            return None

    def is_ours(self, pid: int) -> bool:
        """True if ``pid`` runs a binary from this cluster's own kwokctl folder.

        Guards against reused pids, including one now held by another cluster's component:
        ``down`` on a cluster with stale pid files must never stop a neighbour's process.
        """
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return f"{self.layout.cluster_dir}/".encode() in cmdline

    def state(self) -> ClusterState:
        components = []
        for name in COMPONENTS:
            pid = self.component_pid(name)
            components.append(ComponentState(name, pid, pid is not None and self.is_ours(pid)))
        server = self.server_url()
        return ClusterState(components, server is not None and self.api_ready(), server)

    def server_url(self) -> str | None:
        try:
            config = json.loads(self.kubeconfig.read_text())
        except (OSError, ValueError):
            return None
        return str(config["clusters"][0]["cluster"]["server"])

    def api_ready(self) -> bool:
        if not self.kubeconfig.exists() or not self.kubectl_binary.exists():
            return False
        result = subprocess.run(
            [
                str(self.kubectl_binary),
                "--kubeconfig",
                str(self.kubeconfig),
                "--request-timeout=5s",
                "get",
                "--raw",
                "/readyz",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        return result.returncode == 0 and result.stdout.strip() == "ok"

    # ----- kubectl and kwokctl -------------------------------------------------------------

    def kubectl(
        self,
        *args: str,
        user: str | None = DEFAULT_USER,
        stdin: str | None = None,
        check: bool = True,
    ) -> str:
        """Run our kubectl as ``user``; ``user=None`` uses the bootstrap (system:masters) config."""
        if user is None:
            config = ["--kubeconfig", str(self.bootstrap_kubeconfig)]
        else:
            config = ["--kubeconfig", str(self.kubeconfig), "--context", context_for(user)]
        result = subprocess.run(
            [str(self.kubectl_binary), *config, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def kwokctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KWOK_WORKDIR": str(self.layout.kwok_workdir)}
        result = subprocess.run(
            [str(self.layout.kwok_bin / "kwokctl"), "--name", self.layout.kwokctl_name, *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(
                f"kwokctl {' '.join(args)} failed (exit {result.returncode}):\n"
                + (result.stderr or result.stdout).strip()[-3000:]
            )
        return result

    def autoscaling(self) -> AutoscalingPipeline:
        """This cluster's metrics-server and KEDA (started on demand, see autoscaling.py)."""
        from .autoscaling import AutoscalingPipeline

        return AutoscalingPipeline(self)

    # ----- up ------------------------------------------------------------------------------

    @property
    def generation_file(self) -> Path:
        return self.layout.run_dir / "generation"

    def is_current(self) -> bool:
        """True if the cluster was created with this checkout's CLUSTER_GENERATION."""
        try:
            return self.generation_file.read_text().strip() == CLUSTER_GENERATION
        except OSError:
            return False

    def up(self) -> bool:
        """Start the cluster unless it already runs; True if this call started it."""
        with self.lock():
            if self.state().any_running and not self.is_current():
                say(
                    "the running cluster was created without this checkout's creation flags "
                    f"(generation {CLUSTER_GENERATION}): recreating it"
                )
                self.down_unlocked()
            if self.state().healthy:
                say(f"cluster already running ({self.server_url()})")
                self.autoscaling().unregister_if_dead()
                return False
            if self.state().any_running and self.becomes_healthy(UNHEALTHY_GRACE_SECONDS):
                say(f"cluster healthy again ({self.server_url()})")
                return False
            if self.state().any_running and self.restart_stopped_components():
                say(f"restarted the stopped components ({self.server_url()})")
                return False
            if self.layout.run_dir.exists():
                say("removing the state of a cluster that is no longer healthy")
                self.down_unlocked()
            ensure_built(self.layout)
            started = time.monotonic()
            try:
                with self.ports_lock():
                    self.create()
                self.write_kubeconfig()
                self.configure()
            except (ClusterError, BuildError, OSError):
                self.down_unlocked()
                raise
            self.generation_file.write_text(CLUSTER_GENERATION + "\n")
            say(f"cluster up in {time.monotonic() - started:.1f}s")
            return True

    def becomes_healthy(self, timeout: float) -> bool:
        """True if the cluster turns healthy within ``timeout`` without our help."""
        try:
            wait_until("the cluster to be healthy", lambda: self.state().healthy, timeout, 1.0)
        except ClusterError:
            return False
        return True

    def create(self) -> None:
        run_dir = self.layout.run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)
        (self.layout.logs_dir / "default.log").write_text(cri_lines([DEFAULT_LOG_LINE]))
        shutil.copyfile(KWOK_ASSETS / "tokens.csv", self.layout.tokens_file)
        config = run_dir / "kwokctl.yaml"
        config.write_text(self.kwokctl_config())
        say("starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok")
        kube = self.layout.kube_bin
        flags = [
            ("--runtime", "binary"),
            ("--config", str(config)),
            # Never touch ~/.kube/config: we write our own kubeconfig.
            ("--kubeconfig", ""),
            ("--kube-apiserver-binary", str(kube / "kube-apiserver")),
            ("--kube-controller-manager-binary", str(kube / "kube-controller-manager")),
            ("--kube-scheduler-binary", str(kube / "kube-scheduler")),
            ("--kwok-controller-binary", str(self.layout.kwok_bin / "kwok")),
            ("--etcd-binary", str(self.layout.etcd_bin / "etcd")),
            ("--extra-args", f"kube-apiserver=token-auth-file={self.layout.tokens_file}"),
            # Nodes get InternalIP 127.0.0.1: the API server reaches KWOK's kubelet API (logs)
            # there, and nothing ever points at a non-loopback address.
            ("--extra-args", "kwok-controller=node-ip=127.0.0.1"),
            # One instance each: without leader election they survive an API server restart
            # (with it they exit once they cannot renew their lease).
            ("--extra-args", "kube-controller-manager=leader-elect=false"),
            ("--extra-args", "kube-scheduler=leader-elect=false"),
            # The controller-manager's default client limit (20 requests/s, burst 30) caps a
            # cluster at ~2 finished rollouts a second; large clusters raise it, and so do we,
            # so fleet-scale tests and bench/fleet measure fleetdeck rather than that limit.
            ("--extra-args", "kube-controller-manager=kube-api-qps=300"),
            ("--extra-args", "kube-controller-manager=kube-api-burst=600"),
            ("--extra-args", "kube-controller-manager=concurrent-deployment-syncs=25"),
            ("--extra-args", "kube-controller-manager=concurrent-replicaset-syncs=25"),
            # The HorizontalPodAutoscaler controller looks every 5 s (default 15 s), so the
            # autoscaling tests see a decision within seconds of a metric moving.
            ("--extra-args", "kube-controller-manager=horizontal-pod-autoscaler-sync-period=5s"),
            ("--extra-args", "kube-scheduler=kube-api-qps=300"),
            ("--extra-args", "kube-scheduler=kube-api-burst=600"),
            # The aggregation layer (metrics.k8s.io, external.metrics.k8s.io): kwokctl already
            # makes the API server proxy with its admin certificate; these let an aggregated
            # server (metrics-server, KEDA's adapter) trust that proxy and read the caller's
            # identity from its headers, as in a kubeadm cluster. Last on purpose: kwokctl
            # v0.8.0 indexes its per-component patches by the position of a component's first
            # --extra-args, so every component's first one must come before any second one.
            *[("--extra-args", f"kube-apiserver={flag}") for flag in self.requestheader_flags()],
            ("--timeout", "5m"),
        ]
        self.kwokctl("create", "cluster", *[part for flag in flags for part in flag])

    def requestheader_flags(self) -> list[str]:
        """kube-apiserver's front-proxy flags; the CA is the one kwokctl signs its admin
        certificate (the proxy's client certificate) with."""
        return [
            f"requestheader-client-ca-file={self.layout.cluster_dir / 'pki' / 'ca.crt'}",
            "requestheader-allowed-names=kwok-admin",
            "requestheader-username-headers=X-Remote-User",
            "requestheader-group-headers=X-Remote-Group",
            "requestheader-extra-headers-prefix=X-Remote-Extra-",
        ]

    def kwokctl_config(self) -> str:
        """kwokctl's --config: our options, then every Stage (they replace KWOK's defaults)."""
        options: dict[str, Any] = {
            # Loopback only: kwokctl binds 0.0.0.0 by default.
            "bindAddress": "127.0.0.1",
            "kubectlBinary": str(self.kubectl_binary),
            # Log routing is created at run time (one Logs object per pod with a log file).
            # Simulated resource usage too: the autoscaling pipeline creates the Metric object
            # metrics-server scrapes and the ClusterResourceUsage it reads (none by default, so
            # a cluster without autoscaling serves no resource metrics and pays nothing).
            "enableCRDs": [
                "Logs",
                "ClusterLogs",
                "Metric",
                "ClusterResourceUsage",
                "ResourceUsage",
            ],
        }
        if not self.layout.is_default:
            # The first cluster keeps kwokctl's own choice (the ports it has always had).
            options.update(self.pick_ports())
        config = {
            "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
            "kind": "KwokctlConfiguration",
            "options": options,
        }
        documents = [json.dumps(config, indent=2)]
        for stage in sorted((KWOK_ASSETS / "stages").glob("*.yaml")):
            documents.append(stage.read_text())
        return "\n---\n".join(documents)

    def write_kubeconfig(self) -> None:
        """Our kubeconfig: one cluster, a token user and a context per user, admin by default."""
        raw = subprocess.run(
            [
                str(self.kubectl_binary),
                "--kubeconfig",
                str(self.bootstrap_kubeconfig),
                "config",
                "view",
                "--raw",
                "--flatten",
                "--minify",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        cluster = json.loads(raw)["clusters"][0]["cluster"]
        tokens = read_tokens()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context_for(DEFAULT_USER),
            "clusters": [
                {
                    "name": f"kwok-{self.layout.kwokctl_name}",
                    "cluster": {
                        "server": cluster["server"],
                        "certificate-authority-data": cluster["certificate-authority-data"],
                    },
                }
            ],
            "users": [{"name": context_for(u), "user": {"token": tokens[u]}} for u in USERS],
            "contexts": [
                {
                    "name": context_for(u),
                    "context": {
                        "cluster": f"kwok-{self.layout.kwokctl_name}",
                        "user": context_for(u),
                    },
                }
                for u in USERS
            ],
            "preferences": {},
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)

    def configure(self) -> None:
        """RBAC, nodes, namespaces and log routing, then wait until it is all usable."""
        say("applying RBAC, nodes, namespaces")
        wait_until("the API server", self.api_ready, timeout=120)
        self.kubectl("apply", "-f", str(KWOK_ASSETS / "rbac.yaml"), user=None)
        self.kubectl("apply", "-f", str(KWOK_ASSETS / "nodes.yaml"))
        self.kubectl("create", "namespace", PLATFORM_NAMESPACE)
        for namespace in MODEL_NAMESPACES:
            self.apply_model_namespace(namespace)
        self.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/logs.kwok.x-k8s.io",
            "crd/clusterlogs.kwok.x-k8s.io",
        )
        self.kubectl("apply", "-f", "-", stdin=json.dumps(self.default_cluster_logs()))
        self.kubectl("wait", "--for=condition=Ready", "--timeout=120s", "node", "--all")
        for namespace in (*MODEL_NAMESPACES, PLATFORM_NAMESPACE):
            self.wait_for_default_service_account(namespace)

    def default_cluster_logs(self) -> dict[str, Any]:
        return {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "ClusterLogs",
            "metadata": {"name": "fleetdeck-default"},
            "spec": {
                "logs": [
                    {
                        "logsFile": str(self.layout.logs_dir / "default.log"),
                        "follow": True,
                    }
                ]
            },
        }

    def apply_model_namespace(self, namespace: str) -> None:
        """Create ``namespace`` (if needed) as a model namespace: oncall may act in it."""
        manifest = (KWOK_ASSETS / "model-namespace.yaml").read_text()
        self.kubectl("apply", "-f", "-", stdin=manifest.replace("${NAMESPACE}", namespace))

    def wait_for_default_service_account(self, namespace: str, timeout: float = 60) -> None:
        """Pods cannot be created before the controller manager made the namespace's SA."""

        def has_account() -> bool:
            out = self.kubectl(
                "get",
                "serviceaccount",
                "default",
                "-n",
                namespace,
                "--ignore-not-found",
                "-o",
                "name",
            )
            return bool(out.strip())

        wait_until(f"serviceaccount default in {namespace}", has_account, timeout)

    # ----- ports ---------------------------------------------------------------------------

    def pick_ports(self) -> dict[str, int]:
        """The first block of free ports no other cluster has recorded (call under
        ``ports_lock``): a port of a neighbour's stopped component is unbound but still taken."""
        taken = {
            port for run_dir in self.layout.other_run_dirs() for port in recorded_ports(run_dir)
        }
        for block in range(PORT_BLOCKS):
            first = NAMED_PORT_BASE + block * PORT_BLOCK_SIZE
            ports = list(range(first, first + len(PORT_OPTIONS)))
            if taken.isdisjoint(ports) and all(port_is_free(port) for port in ports):
                return dict(zip(PORT_OPTIONS, ports, strict=True))
        last = NAMED_PORT_BASE + PORT_BLOCKS * PORT_BLOCK_SIZE
        raise ClusterError(
            f"no block of {len(PORT_OPTIONS)} free ports in {NAMED_PORT_BASE}-{last}"
        )

    def component_ports(self) -> dict[str, list[int]]:
        """component -> the ports kwokctl gave it (from its kwok.yaml), empty when not created."""
        try:
            text = (self.layout.cluster_dir / "kwok.yaml").read_text()
        except OSError:
            return {}
        return parse_component_ports(text)

    @contextmanager
    def ports_lock(self) -> Iterator[None]:
        with exclusive_lock(self.layout.ports_lock_file):
            yield

    # ----- down ----------------------------------------------------------------------------

    def down(self) -> None:
        with self.lock():
            self.down_unlocked()

    def down_unlocked(self) -> None:
        # The autoscaling pipeline's processes first: they are not kwokctl's to stop.
        self.autoscaling().stop_processes()
        pids = [pid for name in COMPONENTS if (pid := self.component_pid(name)) is not None]
        if (self.layout.kwok_bin / "kwokctl").exists() and self.layout.cluster_dir.exists():
            self.kwokctl("delete", "cluster", check=False)
        # kwokctl only signals; make sure nothing of ours survives before removing its files.
        for pid in pids:
            self.stop_process(pid)
        shutil.rmtree(self.layout.run_dir, ignore_errors=True)

    def stop_process(self, pid: int, timeout: float = 20) -> None:
        if not self.is_ours(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.is_ours(pid) and not is_zombie(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.1)

    # ----- API server restarts (reconnect tests) -------------------------------------------

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver only; etcd and the rest keep running."""
        pid = self.component_pid("kube-apiserver")
        if pid is None:
            raise ClusterError("kube-apiserver is not running (no pid file)")
        # A graceful stop drains open watches for up to a minute; the test only needs the
        # server gone, so after a short grace it is killed (as a crash would).
        self.stop_process(pid, timeout=5)
        # Without its pid file kwokctl's `start cluster` starts it again (and only it).
        self.pid_file("kube-apiserver").unlink(missing_ok=True)

    def start_apiserver(self) -> None:
        if not self.restart_stopped_components():
            raise ClusterError("the cluster is not healthy after starting kube-apiserver again")

    def restart_stopped_components(self) -> bool:
        """Start whatever component died (kwokctl skips running ones); True if healthy after."""
        self.kwokctl("start", "cluster", "--timeout", "2m", check=False)
        try:
            wait_until("the API server", self.api_ready, timeout=120)
        except ClusterError:
            return False
        return self.state().healthy

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def freeze_apiserver(self) -> None:
        """SIGSTOP kube-apiserver: it accepts connections (the kernel does) and never answers,
        as an overloaded or partitioned control plane does. ``thaw_apiserver`` resumes it."""
        pid = self.component_pid("kube-apiserver")
        if pid is None:
            raise ClusterError("kube-apiserver is not running (no pid file)")
        os.kill(pid, signal.SIGSTOP)

    def thaw_apiserver(self) -> None:
        pid = self.component_pid("kube-apiserver")
        if pid is not None:
            os.kill(pid, signal.SIGCONT)

    # ----- container logs ------------------------------------------------------------------

    def log_file(self, namespace: str, pod: str, container: str) -> Path:
        return self.layout.logs_dir / namespace / pod / f"{container}.log"

    def register_log_file(self, namespace: str, pod: str, container: str) -> Path:
        """Create the container's log file and the Logs object pointing KWOK at it."""
        path = self.log_file(namespace, pod, container)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        entries = [
            {"containers": [file.stem], "logsFile": str(file), "follow": True}
            for file in sorted(path.parent.glob("*.log"))
        ]
        logs = {
            "apiVersion": "kwok.x-k8s.io/v1alpha1",
            "kind": "Logs",
            "metadata": {"name": pod, "namespace": namespace},
            "spec": {"logs": entries},
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(logs))
        return path

    # ----- locking -------------------------------------------------------------------------

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Serialise up/down across processes (a pytest session and a shell, say)."""
        with exclusive_lock(self.layout.lock_file):
            yield


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_is_free(port: int) -> bool:
    """Nothing listens on ``port``, on loopback or on all addresses (kwokctl checks both)."""
    for host in ("127.0.0.1", ""):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # As the Go servers bind: connections of a stopped cluster lingering in TIME_WAIT
            # do not keep its ports from a cluster started again by the same name.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                return False
    return True


def recorded_ports(run_dir: Path) -> set[int]:
    """Every port in the kwok.yaml files under a cluster's run folder."""
    ports: set[int] = set()
    for kwok_yaml in run_dir.glob("kwok/clusters/*/kwok.yaml"):
        try:
            text = kwok_yaml.read_text()
        except OSError:
            continue
        for component_ports in parse_component_ports(text).values():
            ports.update(component_ports)
    return ports


# kwok.yaml's top-level `components:` list holds mappings with sorted keys: `  name: <component>`
# comes before its `  ports:` list of `  - name: <port name>` / `    port: <number>` entries.
COMPONENT_NAME_LINE = re.compile(r"^  name: (\S+)$")
PORT_LINE = re.compile(r"^    port: (\d+)$")


def parse_component_ports(kwok_yaml: str) -> dict[str, list[int]]:
    """component -> ports, from kwokctl's kwok.yaml (a line scan: no YAML parser in stdlib)."""
    ports: dict[str, list[int]] = {}
    in_components = False
    component: str | None = None
    for line in kwok_yaml.splitlines():
        if line and not line.startswith((" ", "-")):
            # A top-level key (or a document separator) ends the components list.
            in_components = line == "components:"
            component = None
        elif not in_components:
            continue
        elif match := COMPONENT_NAME_LINE.match(line):
            component = match.group(1)
            ports[component] = []
        elif (match := PORT_LINE.match(line)) and component is not None:
            ports[component].append(int(match.group(1)))
    return ports


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def cri_lines(lines: Sequence[str], stream: str = "stdout") -> str:
    """Lines in the CRI log format KWOK (like a kubelet) reads: ``<RFC3339Nano> stdout F text``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return "".join(f"{stamp} {stream} F {line}\n" for line in lines)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time ``pid`` has used so far, 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command (which may hold spaces) start at field 3; utime, stime are 14, 15.
    fields = stat.rsplit(")", 1)[-1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
