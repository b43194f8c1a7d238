"""Batch scoring on the local runtime: ``fleetdeck score`` runs ``python -m training.score`` as
a job of the local agent, which publishes a precomputed table into a real model version, lists
with training's jobs under its own kind, has its log followed, shares training's parallelism and
is cancelled like training."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from console.backends.local import LocalBackend
from console.model import TrainingRequest
from console.profile import Profile, load_profile
from serving.store import ModelStore
from tests.infra.k8s_fixtures import poll_until
from tests.integration.local.fixtures import DigitsStore, local_backend
from tests.support.cli import run_fleetdeck
from training.data import load_dataset, write_dataset

ROOT = Path(__file__).resolve().parents[3]
CREATED = re.compile(r"default/(score-digits-[0-9a-f]{5}): ok: created scoring job")


def fleetdeck(*args: str) -> subprocess.CompletedProcess[str]:
    return run_fleetdeck(*args)


def keyed_inputs(store: DigitsStore, folder: Path, count: int) -> Path:
    """``count`` photos keyed ``photo-00000``..., the digits sample's images repeated."""
    images = load_dataset(str(store.data)).images
    chosen = images[np.arange(count) % len(images)]
    keys = np.array([f"photo-{i:05d}" for i in range(count)])
    write_dataset(str(folder), ["a", "b"], chosen, np.zeros(count, dtype=np.int64), keys, 2)
    return folder


def job_row(name: str) -> dict[str, Any] | None:
    listed = fleetdeck("jobs", "--json")
    assert listed.returncode == 0, listed.stderr
    return next((j for j in json.loads(listed.stdout) if j["name"] == name), None)


def test_fleetdeck_score_publishes_the_versions_table_and_lists_as_a_scoring_job(
    profile: Profile, digits_store: DigitsStore, tmp_path: Path
) -> None:
    version = digits_store.publish_copy()
    inputs = keyed_inputs(digits_store, tmp_path / "photos", 300)
    store = ModelStore(str(digits_store.root))
    assert store.manifest("digits", version).precomputed is None

    scored = fleetdeck(
        "score", "--model", "digits", "--version", str(version), "--input", str(inputs),
        "--batch-size", "128", "--follow",
    )  # fmt: skip

    assert scored.returncode == 0, scored.stderr
    found = CREATED.search(scored.stdout)
    assert found, scored.stdout
    name = found.group(1)
    # --follow streamed the job's own progress: JSON lines with done/total and examples/s.
    progress = [
        json.loads(line)
        for line in scored.stdout.splitlines()
        if line.startswith("{") and '"progress"' in line
    ]
    assert progress[-1]["done"] == progress[-1]["total"] == 300
    assert progress[-1]["examples_per_s"] > 0
    assert "published a table of 300 keys" in scored.stdout

    job = poll_until("the job Succeeded", lambda: _ended(name), timeout=60)
    assert (job["kind"], job["phase"], job["model"]) == ("score", "Succeeded", "digits")
    manifest = store.manifest("digits", version)
    assert manifest.precomputed is not None
    assert manifest.precomputed.rows == 300
    assert manifest.precomputed.details["job"] == name
    assert any(path.startswith("precomputed/") for path in manifest.files)

    table = fleetdeck("jobs")
    (row,) = [line.split() for line in table.stdout.splitlines() if name in line]
    assert row[:5] == ["default", name, "score", "digits", "Succeeded"]
    logs = fleetdeck("logs", f"job/{name}")
    assert logs.returncode == 0, logs.stderr
    assert "published a table of 300 keys" in logs.stdout
    audit = json.loads(fleetdeck("audit", "--json").stdout)
    assert [(e["action"], e["parameters"]["version"]) for e in audit] == [("score", version)]


def _ended(name: str) -> dict[str, Any] | None:
    job = job_row(name)
    return job if job and job["phase"] in ("Succeeded", "Failed") else None


def test_a_scoring_job_waits_behind_training_for_the_profiles_parallelism_and_cancels(
    profile: Profile, digits_store: DigitsStore, tmp_path: Path
) -> None:
    """``[local] training_parallel = 1``: a scoring job queued behind a training run stays
    Pending; cancelled there, it never runs and publishes nothing."""
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "fleetdeck" / "profiles" / "local.toml"
    path.write_text(path.read_text() + "training_parallel = 1\n")  # [local] is the last table
    one_at_a_time = load_profile("local")
    assert one_at_a_time.local is not None
    assert one_at_a_time.local.training_parallel == 1
    version = digits_store.publish_copy()
    inputs = keyed_inputs(digits_store, tmp_path / "photos", 100)
    with local_backend(one_at_a_time) as backend:
        request = TrainingRequest("digits", str(digits_store.data), epochs=50, params={"width": 8})
        (training,) = backend.train(request)
        training_name = training.target.split("/", 1)[1]
        poll_until("training running", lambda: _phase(backend, training_name) == "Running")
        launched = fleetdeck(
            "score", "--model", "digits", "--version", str(version), "--input", str(inputs),
            "--json",
        )  # fmt: skip
        assert launched.returncode == 0, launched.stderr
        (result,) = json.loads(launched.stdout)
        name = result["target"].split("/", 1)[1]
        job = job_row(name)
        assert job is not None
        assert (job["kind"], job["phase"]) == ("score", "Pending")

        cancelled = fleetdeck("cancel", f"job/{name}")
        assert cancelled.returncode == 0, cancelled.stderr
        assert backend.cancel_job("default", training_name).ok
        job = poll_until("the scoring job ended", lambda: _ended(name), timeout=60)
        assert job["phase"] == "Failed"
        assert job["pending_reason"] == "Cancelled before it started"
        poll_until("training ended", lambda: _phase(backend, training_name) == "Failed", 120)
    assert backend.job_pods("default", name) == []  # it never ran: no log
    manifest = ModelStore(str(digits_store.root)).manifest("digits", version)
    assert manifest.precomputed is None


def _phase(backend: LocalBackend, name: str) -> str:
    return next((j.phase.value for j in backend.jobs() if j.name == name), "")


def test_a_dry_run_a_missing_version_and_a_read_only_profile_start_no_job(
    profile: Profile, digits_store: DigitsStore, tmp_path: Path
) -> None:
    inputs = str(keyed_inputs(digits_store, tmp_path / "photos", 10))
    score = ("score", "--model", "digits", "--input", inputs, "--version")

    dry = fleetdeck(*score, "1", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would create scoring job" in dry.stdout
    assert "python -m training.score --model digits" in dry.stdout

    missing = fleetdeck(*score, "99")
    assert missing.returncode == 1
    assert "99" in missing.stdout

    read_only = fleetdeck("--readonly", *score, "1")
    assert read_only.returncode == 1
    assert "read-only" in read_only.stderr

    bad = fleetdeck(*score, "0")
    assert bad.returncode == 2
    assert "--version and --batch-size must be 1 or more" in bad.stderr

    assert json.loads(fleetdeck("jobs", "--json").stdout) == []
