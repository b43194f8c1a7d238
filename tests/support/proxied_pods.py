"""Real predictors behind KWOK pods, measured through a real API server's pod proxy.

KWOK pods run no containers, so a test pod is given a real predictor: the predictor listens on
this machine's own (non-loopback) address, the pod declares the predictor's port, and the
pod's status IP is set to that address. The API server then proxies
``pods/<pod>/proxy/metrics`` to the predictor exactly as it would to a real pod (it refuses
loopback addresses, hence the machine's own). Works on any of the test clusters.
"""

from __future__ import annotations

import dataclasses
import socket
from typing import Any

from console.backends.kubernetes.backend import KubernetesBackend
from console.model import DeployRequest
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.infra.require import missing_infra


def machine_address() -> str:
    """This machine's address on its default route (never loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        missing_infra("a non-loopback IPv4 address for the API server to proxy to")
    return address


class ProxiedPods:
    """Fleetdeck deployments in one namespace of one cluster whose pods lead to real
    predictors on this machine."""

    def __init__(self, k8s: K8sCluster, namespace: str) -> None:
        from kubernetes import client

        self.k8s = k8s
        self.namespace = namespace
        self.address = machine_address()
        self.core: Any = client.CoreV1Api(k8s.api_client())
        self.profile = load_profile("kwok")

    def serve(self, name: str, port: int) -> str:
        """A one-pod deployment ``name`` whose pod leads to the predictor listening on
        ``port`` here; returns the pod's name."""
        pod = self.deploy(name, port)
        self.lead_to_this_machine(pod)
        return pod

    def deploy(self, name: str, port: int) -> str:
        """A one-pod deployment declaring ``port``; returns its running pod's name."""
        profile = dataclasses.replace(
            self.profile,
            predictor=dataclasses.replace(self.profile.predictor, port=port, replicas=1),
        )
        backend = KubernetesBackend(
            profile, api_client=self.k8s.api_client(), namespaces=[self.namespace], user="test"
        )
        result = backend.actions.deploy(
            DeployRequest(name, "digits", 1, replicas=1), self.namespace, verify=False
        )
        assert result.ok, result.message
        return str(poll_until(f"{name}'s pod running", lambda: self._running(name), 180))

    def _running(self, name: str) -> str | None:
        pods = self.core.list_namespaced_pod(
            self.namespace, label_selector=f"app.kubernetes.io/name={name}"
        ).items
        running = [p.metadata.name for p in pods if p.status.phase == "Running"]
        return running[0] if running else None

    def lead_to_this_machine(self, pod: str) -> None:
        body = {"status": {"podIP": self.address, "podIPs": [{"ip": self.address}]}}
        # A merge patch replaces the IP list (a strategic one would add to it).
        self.core.patch_namespaced_pod_status(
            pod, self.namespace, body, _content_type="application/merge-patch+json"
        )
        poll_until(
            f"{pod}'s IP to stay {self.address}",
            lambda: (
                self.core.read_namespaced_pod(pod, self.namespace).status.pod_ip == self.address
            ),
        )
