"""The autoscaling pipeline of a test cluster: metrics-server and KEDA, as plain processes.

What a real cluster runs as pods runs here as processes beside the control plane, the way
kwokctl's binary runtime runs it:

- **metrics-server** scrapes every KWOK node's resource metrics endpoint (KWOK computes pod CPU
  and memory from the ClusterResourceUsage in ``tests/infra/kwok/autoscaling/``) and serves
  ``metrics.k8s.io``, which the HorizontalPodAutoscaler controller reads for CPU targets;
- **KEDA's operator** turns ScaledObjects into HorizontalPodAutoscalers and runs their scalers
  (the Prometheus one for req/s); it serves the metric values over gRPC (mutual TLS);
- **KEDA's metrics adapter** serves ``external.metrics.k8s.io`` from the operator's values.

Both API groups are registered as APIServices whose Service is an ExternalName of 127.0.0.1
(the aggregator resolves such a Service to its name and port, so neither kube-proxy nor
``--enable-aggregator-routing`` nor an Endpoints object, which may not hold a loopback address,
is needed). The API server proxies with kwokctl's admin certificate and the servers trust it
through the front-proxy flags ``Cluster.create`` passes (cluster generation 2). Every process
uses kwokctl's admin kubeconfig and serves with kwokctl's admin certificate (its names include
127.0.0.1; it is a client and a server certificate), which KEDA also uses for its gRPC mTLS.

Started on demand (``tests/infra/cluster autoscaling-up`` or the pytest fixture
``autoscaling_pipeline``), never by ``up``: it costs CPU (metrics-server scrapes every node
every 10 s) that the other tests and the benchmarks should not pay. State lives in the
cluster's run folder (``autoscaling/``: pid files, logs, ports, certificates), so ``down``
removes it with the cluster. Stdlib only, like the rest of this package.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .build import ensure_autoscaling_built, say
from .cluster import Cluster, ClusterError, is_zombie, wait_until
from .layout import KEDA_VERSION, KWOK_ASSETS

COMPONENTS = ("metrics-server", "keda-operator", "keda-adapter")
KEDA_NAMESPACE = "keda"
KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_FINALIZER = "finalizer.keda.sh"
METRICS_API = "v1beta1.metrics.k8s.io"
EXTERNAL_METRICS_API = "v1beta1.external.metrics.k8s.io"
# The Service each APIService names (ExternalName 127.0.0.1, the server's port).
API_SERVICES = {
    METRICS_API: ("kube-system", "metrics-server", "metrics-server"),
    EXTERNAL_METRICS_API: (KEDA_NAMESPACE, "keda-metrics-apiserver", "keda-adapter"),
}
# How often metrics-server scrapes the nodes: its lowest sensible value (it must exceed the
# scrape timeout). The HorizontalPodAutoscaler reads a new CPU value at most this often.
METRIC_RESOLUTION = "10s"
ASSETS = KWOK_ASSETS / "autoscaling"
# A component that exits while the pipeline starts (a port taken between our pick and its
# bind, say) gets one more try.
# KEDA's operator has been seen to exit while starting, now and then, twice in a row once
# (cause not found yet: see the stop note of 2026-12-04); each attempt takes new ports.
START_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 2.0
# The annotation metrics-server reads a node's resource metrics path from (KWOK serves each
# node's at its own path on one port).
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
# The ports each component listens on, by name (all on 127.0.0.1 but the adapter's own
# metrics page, which KEDA binds on every address).
PORT_NAMES = (
    "metrics-server",
    "keda-operator-grpc",
    "keda-operator-health",
    "keda-adapter",
    "keda-adapter-metrics",
)


@dataclass(frozen=True)
class PipelineComponent:
    name: str
    pid: int | None
    running: bool


class AutoscalingPipeline:
    """metrics-server and KEDA for one test cluster (its run folder's ``autoscaling/``)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.layout = cluster.layout
        self.folder = self.layout.autoscaling_dir

    # ----- paths and processes -------------------------------------------------------------

    @property
    def certs_dir(self) -> Path:
        """ca.crt, tls.crt, tls.key: the names KEDA's gRPC reads from its --cert-dir."""
        return self.folder / "certs"

    @property
    def ports_file(self) -> Path:
        return self.folder / "ports.json"

    @property
    def users_lock_file(self) -> Path:
        """Held shared by every pytest session using the pipeline (see ``in_use``)."""
        return self.layout.run_root / f"{self.layout.run_dir.name}-autoscaling-users.lock"

    @property
    def pinned_file(self) -> Path:
        """Present when a person started the pipeline (``autoscaling-up``): sessions leave it."""
        return self.folder / "pinned"

    def pid_file(self, component: str) -> Path:
        return self.folder / "pids" / f"{component}.pid"

    def log_file(self, component: str) -> Path:
        return self.folder / "logs" / f"{component}.log"

    def component_pid(self, component: str) -> int | None:
        try:
            return int(self.pid_file(component).read_text().strip())
        except (OSError, ValueError):
            return None

    def is_ours(self, pid: int) -> bool:
        """True if ``pid`` runs with this cluster's autoscaling folder on its command line
        (each component gets a path under it), so a reused pid is never signalled."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        return f"{self.folder}/".encode() in cmdline and not is_zombie(pid)

    def components(self) -> list[PipelineComponent]:
        states = []
        for name in COMPONENTS:
            pid = self.component_pid(name)
            states.append(PipelineComponent(name, pid, pid is not None and self.is_ours(pid)))
        return states

    def ports(self) -> dict[str, int]:
        try:
            loaded = json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(name): int(port) for name, port in loaded.items()}

    def processes_running(self) -> bool:
        return all(component.running for component in self.components())

    def api_available(self, name: str) -> bool:
        out = self.cluster.kubectl(
            "get",
            "apiservice",
            name,
            "--ignore-not-found",
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Available")].status}',
            check=False,
        )
        return out.strip() == "True"

    def healthy(self) -> bool:
        return self.processes_running() and all(self.api_available(name) for name in API_SERVICES)

    # ----- up ------------------------------------------------------------------------------

    def up(self, *, pin: bool = False) -> bool:
        """Start the pipeline unless it runs; True if this call started it. ``pin``: a
        person's start (the CLI), which pytest sessions never stop."""
        # Before the cluster's lock: a first build takes long, and `up` of the cluster must
        # not wait for it (a no-op once built).
        ensure_autoscaling_built(self.layout)
        with self.cluster.lock():
            if not self.cluster.state().healthy:
                raise ClusterError(
                    f"cluster {self.layout.name} is not running (tests/infra/cluster up first)"
                )
            if pin:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.pinned_file.touch()
            if self.healthy():
                return False
            started = time.monotonic()
            say(f"starting the autoscaling pipeline of cluster {self.layout.name}")
            self.stop_processes()
            for attempt in range(1, START_ATTEMPTS + 1):
                try:
                    self.start()
                    break
                except (ClusterError, OSError) as error:
                    # Stopped and unregistered; the logs stay for a look (the next up or down
                    # removes them). A second attempt takes new ports.
                    self.unregister()
                    self.stop_processes()
                    if attempt == START_ATTEMPTS:
                        raise
                    say(f"the autoscaling pipeline did not start ({error}); once more")
                    time.sleep(RETRY_PAUSE_SECONDS)
            say(f"autoscaling pipeline up in {time.monotonic() - started:.1f}s")
            return True

    def start(self) -> None:
        for sub in ("pids", "logs", "ca"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.copy_certificates()
        ports = self.pick_ports()
        self.ports_file.write_text(json.dumps(ports, indent=2) + "\n")
        self.simulate_resource_usage()
        self.install_keda_crds()
        self.start_metrics_server(ports)
        self.start_keda(ports)
        self.register_api_services(ports)
        wait_until(
            "the metrics APIs to be available",
            lambda: all(self.api_available(name) for name in API_SERVICES),
            120,
        )
        wait_until("the metrics APIs to answer", self.apis_answer, 120, 1.0)

    def copy_certificates(self) -> None:
        """kwokctl's CA and admin certificate pair, under the names KEDA's gRPC reads."""
        pki = self.layout.cluster_dir / "pki"
        self.certs_dir.mkdir(parents=True, exist_ok=True)
        for source, target in (("ca.crt", "ca.crt"), ("admin.crt", "tls.crt")):
            shutil.copyfile(pki / source, self.certs_dir / target)
        key = self.certs_dir / "tls.key"
        shutil.copyfile(pki / "admin.key", key)
        key.chmod(0o600)

    def pick_ports(self) -> dict[str, int]:
        """Free ephemeral ports (the clusters' own come from below 32768, so never these)."""
        sockets = []
        try:
            for _ in PORT_NAMES:
                probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                # Bound on every address: the adapter's metrics page is, and a port free there
                # is free on loopback too.
                probe.bind(("", 0))
                sockets.append(probe)
            return {
                name: int(probe.getsockname()[1])
                for name, probe in zip(PORT_NAMES, sockets, strict=True)
            }
        finally:
            for probe in sockets:
                probe.close()

    def simulate_resource_usage(self) -> None:
        """KWOK's resource metrics endpoint and simulated usage, and each node's pointer to it."""
        self.cluster.kubectl(
            "apply",
            "-f",
            str(ASSETS / "resource-metrics.yaml"),
            "-f",
            str(ASSETS / "resource-usage.yaml"),
        )
        for node in self.cluster.kubectl("get", "nodes", "-o", "name").split():
            name = node.removeprefix("node/")
            self.cluster.kubectl(
                "annotate",
                "--overwrite",
                node,
                f"{METRICS_PATH_ANNOTATION}=/metrics/nodes/{name}/metrics/resource",
            )

    def keda_module_dir(self) -> Path:
        """KEDA's module as the build downloaded it (CRDs under config/crd/bases)."""
        path = self.layout.go_dir / "mod" / f"{KEDA_MODULE}@{KEDA_VERSION}"
        if not (path / "config" / "crd" / "bases").is_dir():
            raise ClusterError(
                f"KEDA's module is not in the Go module cache ({path}); "
                "run tests/infra/cluster build"
            )
        return path

    def install_keda_crds(self) -> None:
        """ScaledObject, ScaledJob, TriggerAuthentication, ... from KEDA's own module.
        Server-side apply: the ScaledObject CRD is too large for the last-applied annotation."""
        bases = self.keda_module_dir() / "config" / "crd" / "bases"
        self.cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-f", str(bases), user=None
        )
        # Polled: `kubectl wait` fails on a CRD created a moment ago (no conditions yet).
        wait_until("KEDA's CRDs to be established", self.keda_crds_established, 60, 0.5)
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KEDA_NAMESPACE}}
        self.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(namespace))

    def keda_crds_established(self) -> bool:
        out = self.cluster.kubectl(
            "get",
            "crd",
            "scaledobjects.keda.sh",
            "triggerauthentications.keda.sh",
            "-o",
            'jsonpath={.items[*].status.conditions[?(@.type=="Established")].status}',
            check=False,
        )
        return out.split() == ["True", "True"]

    def spawn(self, component: str, command: list[str], env: dict[str, str]) -> int:
        """Start ``component`` in its own session (it outlives the caller), log to its file."""
        log = self.log_file(component)
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                env={**os.environ, **env},
                start_new_session=True,
            )
        self.pid_file(component).write_text(f"{process.pid}\n")
        return process.pid

    def start_metrics_server(self, ports: dict[str, int]) -> None:
        kubeconfig = str(self.cluster.bootstrap_kubeconfig)
        binary = self.layout.metrics_server_bin / "metrics-server"
        self.spawn(
            "metrics-server",
            [
                str(binary),
                # KWOK nodes: InternalIP 127.0.0.1, the port KWOK's server listens on, a
                # self-signed certificate.
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                "--kubelet-insecure-tls",
                f"--metric-resolution={METRIC_RESOLUTION}",
                "--kubelet-request-timeout=5s",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['metrics-server']}",
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                f"--tls-cert-file={self.certs_dir / 'tls.crt'}",
                f"--tls-private-key-file={self.certs_dir / 'tls.key'}",
            ],
            {},
        )

    def keda_env(self) -> dict[str, str]:
        return {
            # Every namespace; KEDA's own objects in its namespace (as its manifests set them).
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": KEDA_NAMESPACE,
            "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
            "KUBECONFIG": str(self.cluster.bootstrap_kubeconfig),
        }

    def start_keda(self, ports: dict[str, int]) -> None:
        kubeconfig = str(self.cluster.bootstrap_kubeconfig)
        self.spawn(
            "keda-operator",
            [
                str(self.layout.keda_bin / "keda-operator"),
                f"--kubeconfig={kubeconfig}",
                "--leader-elect=false",
                # The certificates are ours: no rotation, no Secret, nothing patched.
                "--enable-cert-rotation=false",
                "--enable-webhook-patching=false",
                "--enable-apiservice-patching=false",
                f"--cert-dir={self.certs_dir}",
                f"--ca-dir={self.folder / 'ca'}",
                f"--metrics-service-bind-address=127.0.0.1:{ports['keda-operator-grpc']}",
                f"--health-probe-bind-address=127.0.0.1:{ports['keda-operator-health']}",
                "--metrics-bind-address=0",
                "--zap-log-level=info",
            ],
            self.keda_env(),
        )
        wait_until("KEDA's operator to be ready", lambda: self.operator_ready(ports), 120, 0.5)
        self.spawn(
            "keda-adapter",
            [
                str(self.layout.keda_bin / "keda-adapter"),
                f"--kubeconfig={kubeconfig}",
                f"--lister-kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['keda-adapter']}",
                f"--tls-cert-file={self.certs_dir / 'tls.crt'}",
                f"--tls-private-key-file={self.certs_dir / 'tls.key'}",
                # The gRPC client's certificates (ca.crt, tls.crt, tls.key) come from here.
                f"--cert-dir={self.certs_dir}",
                f"--metrics-service-address=127.0.0.1:{ports['keda-operator-grpc']}",
                f"--port={ports['keda-adapter-metrics']}",
                "--zap-log-level=info",
            ],
            self.keda_env(),
        )

    def operator_ready(self, ports: dict[str, int]) -> bool:
        pid = self.component_pid("keda-operator")
        if pid is None or not self.is_ours(pid):
            tail = self.log_tail("keda-operator")
            raise ClusterError(f"KEDA's operator exited:\n{tail}")
        url = f"http://127.0.0.1:{ports['keda-operator-health']}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def register_api_services(self, ports: dict[str, int]) -> None:
        items: list[dict[str, object]] = []
        for api, (namespace, service, port_name) in API_SERVICES.items():
            port = ports[port_name]
            version, group = api.split(".", 1)
            items.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": service, "namespace": namespace},
                    "spec": {
                        "type": "ExternalName",
                        "externalName": "127.0.0.1",
                        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
                    },
                }
            )
            items.append(
                {
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "kind": "APIService",
                    "metadata": {"name": api},
                    "spec": {
                        "service": {"name": service, "namespace": namespace, "port": port},
                        "group": group,
                        "version": version,
                        # Loopback only, a certificate whose names do not include the
                        # Service's DNS name: the aggregator skips verification.
                        "insecureSkipTLSVerify": True,
                        "groupPriorityMinimum": 100,
                        "versionPriority": 100,
                    },
                }
            )
        manifest = {"apiVersion": "v1", "kind": "List", "items": items}
        self.cluster.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))

    def apis_answer(self) -> bool:
        """Both APIs answer through the API server (metrics-server lists node metrics, empty
        until a node runs a pod; KEDA's adapter lists its resources)."""
        if not self.processes_running():
            tail = "\n".join(self.log_tail(name) for name in COMPONENTS)
            raise ClusterError(f"an autoscaling component exited:\n{tail}")
        for path in ("/apis/metrics.k8s.io/v1beta1/nodes", "/apis/external.metrics.k8s.io/v1beta1"):
            out = self.cluster.kubectl("get", "--raw", path, check=False)
            try:
                json.loads(out)
            except ValueError:
                return False
        return True

    def log_tail(self, component: str, lines: int = 15) -> str:
        try:
            text = self.log_file(component).read_text(errors="replace")
        except OSError:
            return f"{component}: no log"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"{component} ({self.log_file(component)}):\n{tail}"

    # ----- down ----------------------------------------------------------------------------

    def down(self) -> None:
        with self.cluster.lock():
            self.down_unlocked()

    def down_unlocked(self) -> None:
        """Unregister the APIs first (an APIService whose server is gone makes discovery, and
        with it namespace deletion, fail), stop the processes, release what only KEDA would
        have finalized, and forget the state."""
        api_ready = self.cluster.state().api_ready
        if api_ready:
            self.unregister()
        self.stop_processes()
        if api_ready:
            self.release_keda_finalizers()
        shutil.rmtree(self.folder, ignore_errors=True)

    def release_keda_finalizers(self) -> None:
        """KEDA puts a finalizer on every ScaledObject and ScaledJob and removes it when one is
        deleted; with the operator stopped nothing would, and the object's namespace would stay
        Terminating for good (a test's namespace is deleted as the pipeline stops). A KEDA
        started again puts the finalizer back on what it reconciles."""
        out = self.cluster.kubectl(
            "get", "scaledobjects.keda.sh,scaledjobs.keda.sh", "-A", "-o", "json", check=False
        )
        try:
            items = json.loads(out).get("items", [])
        except ValueError:
            return  # KEDA's CRDs were never installed
        for item in items:
            meta = item["metadata"]
            finalizers = meta.get("finalizers") or []
            if KEDA_FINALIZER not in finalizers:
                continue
            kept = [name for name in finalizers if name != KEDA_FINALIZER]
            self.cluster.kubectl(
                "patch",
                f"{item['kind'].lower()}.keda.sh",
                meta["name"],
                "-n",
                meta["namespace"],
                "--type=merge",
                "-p",
                json.dumps({"metadata": {"finalizers": kept}}),
                check=False,
            )

    def unregister(self) -> None:
        self.cluster.kubectl(
            "delete", "apiservice", *API_SERVICES, "--ignore-not-found", check=False
        )

    def stop_processes(self, timeout: float = 20) -> None:
        for component in reversed(self.components()):
            if component.pid is None or not component.running:
                continue
            os.kill(component.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.is_ours(component.pid):
                if time.monotonic() > deadline:
                    os.kill(component.pid, signal.SIGKILL)
                    break
                time.sleep(0.1)
            self.pid_file(component.name).unlink(missing_ok=True)

    def unregister_if_dead(self) -> None:
        """Called by ``Cluster.up`` on a running cluster: a pipeline whose processes died
        (a killed session) must not leave its APIs registered."""
        if not self.folder.exists() or self.processes_running():
            return
        say("the autoscaling pipeline stopped: unregistering its APIs")
        self.down_unlocked()

    # ----- sharing between pytest sessions -------------------------------------------------

    @contextmanager
    def in_use(self) -> Iterator[None]:
        """Mark the pipeline used by this process for the block (a shared lock)."""
        self.users_lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self.users_lock_file.open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stop_if_unused(self) -> bool:
        """Stop the pipeline unless a person started it or another session still uses it;
        True if stopped. Called by a session that used it, after its ``in_use`` block."""
        if self.pinned_file.exists():
            return False
        self.users_lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self.users_lock_file.open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                self.down()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True
