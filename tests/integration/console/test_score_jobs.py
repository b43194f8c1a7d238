"""``fleetdeck score`` on Kubernetes (the KWOK test cluster, the test HDFS as the store): a
batch/v1 Job running ``python -m training.score`` that says what it is, for a version the store
has, checked by the API server in a dry run, refused to a user the cluster would refuse, listed
with training's jobs under its own kind."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from console.backends.kubernetes.manifests import scoring_job
from console.profile import load_profile
from serving.store import ModelStore
from tests.infra.k8s_fixtures import K8sCluster, poll_until
from tests.support.versions import describe, make_version

ROOT = Path(__file__).resolve().parents[3]
INPUT = "hdfs://namenode:9870/photos/2026-11"
SCORE = ("score", "--model", "digits", "--version", "2", "--input", INPUT)


@dataclass
class Result:
    code: int
    out: str
    err: str


class Fleetdeck:
    """The CLI with a profile of its own: the test cluster, one namespace, predictor resources
    (which a scoring Job takes)."""

    def __init__(self, home: Path, namespace: str, kubeconfig: Path, store: str) -> None:
        profiles = home / "config" / "fleetdeck" / "profiles"
        profiles.mkdir(parents=True)
        (profiles / "test.toml").write_text(
            'backend = "kubernetes"\n'
            f'[kubernetes]\nkubeconfig = "{kubeconfig}"\ncontext = "kwok-admin"\n'
            f'namespaces = ["{namespace}"]\n'
            f'[store]\nroot = "{store}"\n'
            '[images]\npredictor = "fleetdeck-predictor:0.1.0"\n'
            'training = "fleetdeck-training:0.1.0"\n'
            "[predictor]\nreplicas = 1\n"
            'resources = { requests = { cpu = "500m", memory = "256Mi" }, '
            'limits = { cpu = "2", memory = "1Gi" } }\n'
            '[training]\ngpus = 1\nnode_selector = { accelerator = "nvidia-h100" }\n'
            "active_deadline_seconds = 1800\n"
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
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        return Result(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def fleetdeck(
    k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str, tmp_path: Path
) -> Fleetdeck:
    """Versions 1 and 2 of ``digits`` in a fresh store on the test HDFS."""
    source = make_version(tmp_path / "version")
    for _ in range(2):
        ModelStore(hdfs_root).publish("digits", source, describe)
    return Fleetdeck(tmp_path / "home", k8s_namespace, k8s_cluster.kubeconfig, hdfs_root)


def jobs_in(cluster: K8sCluster, namespace: str) -> list[Any]:
    from kubernetes import client

    return list(client.BatchV1Api(cluster.api_client()).list_namespaced_job(namespace).items)


def test_score_creates_a_labelled_job_running_the_scorer_on_cpu_with_the_predictors_resources(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str, hdfs_root: str
) -> None:
    launched = fleetdeck(*SCORE, "--batch-size", "512", "--json")

    assert launched.code == 0, launched.err
    (result,) = json.loads(launched.out)
    assert result["ok"], result["message"]
    name = result["target"].split("/", 1)[1]
    assert name.startswith("score-digits-")
    (job,) = jobs_in(k8s_cluster, k8s_namespace)
    assert job.metadata.name == name
    assert job.metadata.labels == {
        "app.kubernetes.io/managed-by": "fleetdeck",
        "app.kubernetes.io/name": name,
        "fleetdeck.io/model": "digits",
        "fleetdeck.io/model-version": "2",
        "fleetdeck.io/kind": "score",
    }
    assert job.metadata.annotations["kubernetes.io/change-cause"].startswith("score digits v2 by ")
    store = hdfs_root.rstrip("/")
    assert job.metadata.annotations["fleetdeck.io/model-uri"] == f"{store}/digits/2"
    assert job.spec.active_deadline_seconds == 1800
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    assert not pod.node_selector  # scoring runs on CPU: the GPU nodes are training's
    (container,) = pod.containers
    assert container.image == "fleetdeck-training:0.1.0"
    assert container.command == ["python", "-m", "training.score"]
    assert {e.name: e.value for e in container.env} == {
        "FLEETDECK_MODEL": "digits",
        "FLEETDECK_VERSION": "2",
        "FLEETDECK_INPUT": INPUT,
        "FLEETDECK_STORE": hdfs_root,
        "FLEETDECK_RUN_ID": name,
        "FLEETDECK_BATCH_SIZE": "512",
    }
    assert container.resources.requests == {"cpu": "500m", "memory": "256Mi"}
    assert container.resources.limits == {"cpu": "2", "memory": "1Gi"}

    def listed() -> Any:
        return next((j for j in _jobs(fleetdeck) if j["name"] == name), None)

    row = poll_until("the scoring job in fleetdeck jobs", listed)
    assert (row["kind"], row["model"], row["gpus"]) == ("score", "digits", 0)
    table = fleetdeck("jobs").out.splitlines()
    assert table[0].split()[:4] == ["NAMESPACE", "NAME", "KIND", "MODEL"]
    assert [line.split()[2] for line in table if name in line] == ["score"]
    (entry,) = json.loads(fleetdeck("audit", "--json").out)
    assert (entry["action"], entry["parameters"]["input"]) == ("score", INPUT)


def _jobs(fleetdeck: Fleetdeck) -> list[dict[str, Any]]:
    listed = fleetdeck("jobs", "--json")
    assert listed.code == 0, listed.err
    found: list[dict[str, Any]] = json.loads(listed.out)
    return found


def test_a_dry_run_is_checked_by_the_api_server_and_creates_nothing(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    dry = fleetdeck(*SCORE, "--dry-run")

    assert dry.code == 0, dry.err
    assert "ok: would create scoring Job/score-digits-" in dry.out
    assert f"python -m training.score --model digits --version 2 --input {INPUT}" in dry.out
    assert jobs_in(k8s_cluster, k8s_namespace) == []
    (entry,) = json.loads(fleetdeck("audit", "--json").out)
    assert entry["dry_run"] is True


def test_a_version_the_store_lacks_is_refused_unless_told_not_to_check(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    missing = fleetdeck("score", "--model", "digits", "--version", "7", "--input", INPUT)
    assert missing.code == 1
    assert "FAILED" in missing.out
    assert "7" in missing.out
    assert jobs_in(k8s_cluster, k8s_namespace) == []

    unchecked = fleetdeck(
        "score", "--model", "digits", "--version", "7", "--input", INPUT, "--no-verify"
    )
    assert unchecked.code == 0, unchecked.err
    assert [
        j.metadata.labels["fleetdeck.io/model-version"] for j in jobs_in(k8s_cluster, k8s_namespace)
    ] == ["7"]


def test_a_viewer_and_a_read_only_profile_are_refused_before_anything_is_sent(
    fleetdeck: Fleetdeck, k8s_cluster: K8sCluster, k8s_namespace: str
) -> None:
    viewer = fleetdeck("--context", "kwok-viewer", *SCORE)
    assert viewer.code == 1
    assert "forbidden: user 'viewer' may not create jobs" in viewer.err
    assert "nothing was sent" in viewer.err

    read_only = fleetdeck("--readonly", *SCORE)
    assert read_only.code == 1
    assert "read-only" in read_only.err

    assert jobs_in(k8s_cluster, k8s_namespace) == []
    assert json.loads(fleetdeck("audit", "--json").out) == []


def test_a_profile_installing_training_code_at_start_scores_through_start_sh() -> None:
    kwok = load_profile("kwok")
    with_code = dataclasses.replace(
        kwok, training=dataclasses.replace(kwok.training, code="fleetdeck[training]==0.1.0")
    )
    job = scoring_job(with_code, "models", "score-digits-1", "digits", 2, INPUT, cause="test")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert container["command"] == ["/opt/fleetdeck/start.sh"]
    assert env["FLEETDECK_ENTRY_MODULE"] == "training.score"
    assert env["FLEETDECK_TRAINING_CODE"] == "fleetdeck[training]==0.1.0"
