"""A fleet of predictor Deployments on the KWOK cluster, the real backend over it, and the CLI.

Deployments carry what fleetdeck's rollout needs (the model labels on the pod template) and
nothing else; KWOK runs their pods. A rollout's bad version is simulated the way KWOK knows:
:class:`MarkedRollouts` adds KWOK's pod annotations (``fleetdeck.io/test-fail``,
``fleetdeck.io/ready-after``) to the very patch the real rollout sends for the chosen
deployments, so their new pods misbehave while everything else is the real backend.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.actions import KubernetesActions
from console.backends.kubernetes.backend import KubernetesBackend
from console.batch.runner import AuditContext, Target
from console.profile import KubernetesSettings, Profile, StoreSettings, load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.cli import Fleetdeck as RunsFleetdeck
from tests.support.k8s_objects import VERSION, predictor


class Fleet:
    """Deployments in one namespace, created and read through the admin's client."""

    def __init__(self, cluster: K8sCluster, namespace: str) -> None:
        from kubernetes import client

        self.apps: Any = client.AppsV1Api(cluster.api_client())
        self.namespace = namespace

    def create(self, names: Sequence[str], **options: Any) -> list[Target]:
        for name in names:
            self.apps.create_namespaced_deployment(self.namespace, predictor(name, **options))
        return [(self.namespace, name) for name in names]

    def objects(self) -> dict[str, dict[str, Any]]:
        answer = self.apps.list_namespaced_deployment(self.namespace, _preload_content=False)
        return {d["metadata"]["name"]: d for d in json.loads(answer.data)["items"]}

    def versions(self) -> dict[str, str]:
        """Each Deployment's pod-template model version (what its new pods run)."""
        return {
            name: d["spec"]["template"]["metadata"]["labels"][VERSION]
            for name, d in self.objects().items()
        }

    def revisions(self) -> dict[str, str]:
        return {
            name: d["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "")
            for name, d in self.objects().items()
        }

    def wait_available(self, count: int, timeout: float = 180) -> None:
        def available() -> bool:
            objects = self.objects().values()
            done = [
                d
                for d in objects
                if d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]
                and d.get("status", {}).get("availableReplicas", 0) >= d["spec"]["replicas"]
                and d.get("status", {}).get("updatedReplicas", 0) >= d["spec"]["replicas"]
                and d.get("status", {}).get("replicas", 0) == d["spec"]["replicas"]
            ]
            return len(done) >= count

        poll_until(f"{count} deployments available", available, timeout)


class MarkedRollouts(KubernetesActions):
    """The real actions; a rollout of a marked deployment also carries KWOK annotations for its
    new pods in the same patch (one new revision, as a bad model version would make)."""

    def __init__(self, backend: KubernetesBackend, marks: Mapping[Target, Mapping[str, str]]):
        super().__init__(backend.api_client, backend.profile, backend.actions.user)
        self.marks = marks

    def _patch(self, namespace: str, name: str, body: Any, dry_run: bool) -> dict[str, Any]:
        marks = self.marks.get((namespace, name))
        if marks and isinstance(body, dict) and "template" in body.get("spec", {}):
            body = copy.deepcopy(body)
            body["spec"]["template"]["metadata"].setdefault("annotations", {}).update(marks)
        return super()._patch(namespace, name, body, dry_run)


def kwok_profile(cluster: K8sCluster, namespace: str, store: Path, context: str) -> Profile:
    return dataclasses.replace(
        load_profile("kwok"),
        kubernetes=KubernetesSettings(
            context=context, kubeconfig=cluster.kubeconfig, namespaces=(namespace,)
        ),
        store=StoreSettings(root=str(store)),
    )


@pytest.fixture
def fleet(k8s_cluster: K8sCluster, k8s_namespace: str) -> Fleet:
    return Fleet(k8s_cluster, k8s_namespace)


@pytest.fixture
def backend(
    k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path
) -> Iterator[KubernetesBackend]:
    profile = kwok_profile(k8s_cluster, k8s_namespace, tmp_path / "store", "kwok-admin")
    backend = KubernetesBackend(profile, user="kwok-admin")
    assert backend.start(), "the fleet cache did not sync"
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def audit_context(tmp_path: Path) -> AuditContext:
    return AuditContext("kwok", "kwok-admin", "kwok-admin", path=tmp_path / "audit.jsonl")


class Fleetdeck(RunsFleetdeck):
    """The ``fleetdeck`` CLI in subprocesses, with its own profile, state and config folders."""

    def __init__(self, cluster: K8sCluster, namespace: str, home: Path) -> None:
        profiles = home / "config" / "fleetdeck" / "profiles"
        profiles.mkdir(parents=True)
        (profiles / "test.toml").write_text(
            'backend = "kubernetes"\n'
            f'[kubernetes]\nkubeconfig = "{cluster.kubeconfig}"\ncontext = "kwok-admin"\n'
            f'namespaces = ["{namespace}"]\n'
            f'[store]\nroot = "{home / "store"}"\n'
        )
        self.state = home / "state"
        super().__init__(
            {
                **os.environ,
                "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_STATE_HOME": str(self.state),
                "FLEETDECK_PROFILE": "test",
            }
        )

    @property
    def batches(self) -> Path:
        return self.state / "fleetdeck" / "batches"


@pytest.fixture
def fleetdeck(k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path) -> Fleetdeck:
    return Fleetdeck(k8s_cluster, k8s_namespace, tmp_path / "home")
