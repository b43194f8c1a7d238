"""``fleetdeck autoscale`` against the real control plane: the HPA it creates and updates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.autoscale import read_autoscaler
from console.backends.kubernetes.backend import KubernetesBackend
from console.model import AutoscalerInfo, DeployRequest
from console.profile import load_profile
from tests.infra.k8s_fixtures import K8sCluster, poll_until

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, home: Path, namespace: str, kubeconfig: Path) -> None:
        profiles = home / "config" / "fleetdeck" / "profiles"
        profiles.mkdir(parents=True)
        (profiles / "test.toml").write_text(
            'backend = "kubernetes"\n'
            f'[kubernetes]\nkubeconfig = "{kubeconfig}"\ncontext = "kwok-admin"\n'
            f'namespaces = ["{namespace}"]\n'
            '[store]\nroot = "/nonexistent"\n'
        )
        self.env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "FLEETDECK_PROFILE": "test",
        }

    def __call__(self, *args: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "console", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def cli(k8s_cluster: K8sCluster, k8s_namespace: str, tmp_path: Path) -> Cli:
    backend = KubernetesBackend(
        load_profile("kwok"), api_client=k8s_cluster.api_client(), namespaces=[k8s_namespace]
    )
    result = backend.actions.deploy(
        DeployRequest("digits", "digits", 1, replicas=2), k8s_namespace, verify=False
    )
    assert result.ok, result.message
    return Cli(tmp_path / "home", k8s_namespace, k8s_cluster.kubeconfig)


def read_hpa(k8s: K8sCluster, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.AutoscalingV2Api(k8s.api_client())
    try:
        answer = api.read_namespaced_horizontal_pod_autoscaler(
            name, namespace, _preload_content=False
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(json.loads(answer.data))


def test_autoscale_creates_an_hpa_on_requests_per_pod_then_updates_it_to_cpu(
    cli: Cli, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    dry = cli(
        "autoscale", "digits", "--min", "2", "--max", "6", "--rps-per-pod", "12.5", "--dry-run"
    )
    assert dry.code == 0, dry.err
    assert "would create autoscaler: 2..6 replicas at 12.5 req/s per pod" in dry.out
    assert read_hpa(k8s_cluster, k8s_namespace, "digits") is None  # a dry run stores nothing

    made = cli("autoscale", "digits", "--min", "2", "--max", "6", "--rps-per-pod", "12.5")
    assert made.code == 0, made.err
    assert "created autoscaler" in made.out
    hpa = read_hpa(k8s_cluster, k8s_namespace, "digits")
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "digits",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Pods",
            "pods": {
                "metric": {"name": "fleetdeck_predictor_requests_per_second"},
                "target": {"type": "AverageValue", "averageValue": "12500m"},
            },
        }
    ]
    labels = hpa["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "fleetdeck"
    assert labels["fleetdeck.io/model"] == "digits"
    assert (
        "autoscale 2..6 replicas at 12.5 req/s per pod by"
        in (hpa["metadata"]["annotations"]["kubernetes.io/change-cause"])
    )

    def reported() -> AutoscalerInfo | None:
        info = read_autoscaler(k8s_cluster.api_client(), k8s_namespace, "digits")
        return info if info is not None and info.conditions else None

    # What the Deployment screen shows: bounds, targets and the controller's conditions.
    info = poll_until("the HPA controller's conditions", reported)
    assert (info.min_replicas, info.max_replicas) == (2, 6)
    assert info.targets == ("12.5 req/s per pod",)
    assert info.managed_by_fleetdeck
    assert {c.type for c in info.conditions} >= {"AbleToScale"}

    dry_update = cli("autoscale", "digits", "--min", "1", "--max", "4", "--cpu", "80", "--dry-run")
    assert dry_update.code == 0, dry_update.err
    assert "would update autoscaler" in dry_update.out
    unchanged = read_hpa(k8s_cluster, k8s_namespace, "digits")
    assert unchanged is not None
    assert unchanged["spec"] == hpa["spec"]

    updated = cli("autoscale", "digits", "--min", "3", "--max", "9", "--cpu", "60", "--json")
    assert updated.code == 0, updated.err
    (result,) = json.loads(updated.out)
    assert result["ok"] is True
    assert result["message"] == (
        "updated autoscaler: 3..9 replicas at 60% CPU (engine hpa: HorizontalPodAutoscaler digits)"
    )
    assert "spec.minReplicas: 2 -> 3" in result["changes"]
    after = read_hpa(k8s_cluster, k8s_namespace, "digits")
    assert after is not None
    assert after["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 60},
            },
        }
    ]
    again = cli("autoscale", "digits", "--min", "3", "--max", "9", "--cpu", "60")
    assert again.code == 0
    assert "autoscaler already 3..9 replicas at 60% CPU" in again.out

    audit = json.loads(cli("audit", "--json").out)
    recorded = [(e["action"], e["dry_run"]) for e in audit]
    assert recorded.count(("autoscale", True)) == 2
    assert recorded.count(("autoscale", False)) == 3


def test_autoscale_is_refused_where_it_must_not_act(
    cli: Cli, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    viewer = cli(
        "--context", "kwok-viewer", "autoscale", "digits", "--min", "1", "--max", "2", "--cpu", "50"
    )
    assert viewer.code == 1
    assert "forbidden: user 'viewer' may not create horizontalpodautoscalers" in viewer.err
    assert read_hpa(k8s_cluster, k8s_namespace, "digits") is None

    readonly = cli("--readonly", "autoscale", "digits", "--min", "1", "--max", "2", "--cpu", "50")
    assert readonly.code == 1
    assert "read-only" in readonly.err

    missing = cli("autoscale", "nope", "--min", "1", "--max", "2", "--cpu", "50")
    assert missing.code == 1
    assert "deployment 'nope' not found" in missing.out

    backwards = cli("autoscale", "digits", "--min", "5", "--max", "2", "--cpu", "50")
    assert backwards.code == 2
    assert "--max (2) must be >= --min (5)" in backwards.err
    both = cli(
        "autoscale", "digits", "--min", "1", "--max", "2", "--cpu", "50", "--rps-per-pod", "3"
    )
    assert both.code == 2

    # Someone else's autoscaler on the same name is left alone.
    from kubernetes import client

    api: Any = client.AutoscalingV2Api(k8s_cluster.api_client())
    theirs = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "digits"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "digits"},
            "minReplicas": 1,
            "maxReplicas": 3,
        },
    }
    api.create_namespaced_horizontal_pod_autoscaler(k8s_namespace, theirs)
    refused = cli("autoscale", "digits", "--min", "1", "--max", "2", "--cpu", "50")
    assert refused.code == 1
    assert "exists that fleetdeck did not make" in refused.out
    left = read_hpa(k8s_cluster, k8s_namespace, "digits")
    assert left is not None
    assert left["spec"]["maxReplicas"] == 3
