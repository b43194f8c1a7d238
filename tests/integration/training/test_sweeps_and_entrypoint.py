"""Sweeps expand into trials that each publish a version and rank correctly; start.sh installs
the training code from a wheel and runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from serving.store import ModelStore
from tests.infra.hdfs_fixtures import HdfsCluster
from tests.infra.packaging import build_wheel, isolated_venv
from tests.integration.training.conftest import ROOT, run_training
from training.params import parse_grid
from training.sweep import expand, summarize


def test_a_grid_of_four_trials_publishes_four_versions_ranked_by_accuracy(
    sample_data: str, tmp_path: Path
) -> None:
    expanded = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.sweep",
            "--grid",
            "learning_rate=0.0003,0.01",
            "--grid",
            "width=4,8",
            "--sweep",
            "sw-test",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    trials = [json.loads(line) for line in expanded.stdout.splitlines()]
    assert [t["trial"] for t in trials] == [0, 1, 2, 3]
    assert {(t["learning_rate"], t["width"]) for t in trials} == {
        (0.0003, 4),
        (0.0003, 8),
        (0.01, 4),
        (0.01, 8),
    }
    store = str(tmp_path / "store")
    for trial in trials:
        run = run_training(
            "--model",
            "digits",
            "--data",
            sample_data,
            "--store",
            store,
            "--epochs",
            "1",
            "--no-int8",
            *trial["argv"],
        )
        assert run.returncode == 0, run.stderr
    assert ModelStore(store).versions("digits") == [1, 2, 3, 4]
    ranked = summarize(ModelStore(store), "digits")
    accuracies = [t["accuracy"] for t in ranked]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [t["rank"] for t in ranked] == [1, 2, 3, 4]
    assert sorted(t["trial"] for t in ranked) == [0, 1, 2, 3]
    for t in ranked:
        manifest = ModelStore(store).manifest("digits", t["version"])
        assert manifest.training["sweep"] == "sw-test"
        assert manifest.training["trial"] == t["trial"]
        assert manifest.metrics["accuracy"] == t["accuracy"]
    table = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.sweep",
            "summarize",
            "--store",
            store,
            "--model",
            "digits",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "sweep sw-test: 4 trials, best first" in table


def test_random_search_samples_distinct_trials_from_the_grid() -> None:
    grid = [parse_grid("learning_rate=0.001,0.003,0.01"), parse_grid("width=8,16,32")]
    sampled = expand(grid, sample=4, seed=1, sweep="r")
    assert len(sampled) == 4
    assert len({(t["learning_rate"], t["width"]) for t in sampled}) == 4
    assert sampled == expand(grid, sample=4, seed=1, sweep="r")


def test_start_sh_installs_the_code_from_a_wheel_and_trains(
    sample_data: str, tmp_path: Path
) -> None:
    venv = isolated_venv(tmp_path)
    python = str(venv / "bin" / "python")
    before = subprocess.run([python, "-c", "import training"], cwd=tmp_path, capture_output=True)
    assert before.returncode != 0  # the code is not there until start.sh installs it
    store = tmp_path / "store"
    run = run_training(
        command=[str(ROOT / "training" / "start.sh"), "--epochs", "1", "--no-int8"],
        env={
            "PYTHON": python,
            "FLEETDECK_TRAINING_CODE": str(build_wheel(tmp_path)),
            "FLEETDECK_MODEL": "digits",
            "FLEETDECK_DATA": sample_data,
            "FLEETDECK_STORE": str(store),
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "installing training code" in run.stderr
    assert run.events("exported")[0]["version"] == 1
    shown = subprocess.run(
        [python, "-m", "pip", "show", "fleetdeck"], capture_output=True, text=True
    ).stdout
    assert "Location: " + str(venv) in shown


def test_start_sh_fetches_a_wheel_from_hdfs(
    sample_data: str, tmp_path: Path, hdfs_root: str, hdfs_cluster: HdfsCluster
) -> None:
    wheel = build_wheel(tmp_path)
    remote = f"{hdfs_cluster.path(hdfs_root)}/code/{wheel.name}"
    hdfs_cluster.client().upload(remote, str(wheel))
    venv = isolated_venv(tmp_path)
    run = run_training(
        command=[str(ROOT / "training" / "start.sh"), "--epochs", "1", "--no-int8"],
        env={
            "PYTHON": str(venv / "bin" / "python"),
            "FLEETDECK_TRAINING_CODE": f"{hdfs_root}/code/{wheel.name}",
            "FLEETDECK_MODEL": "digits",
            "FLEETDECK_DATA": sample_data,
            "FLEETDECK_STORE": str(tmp_path / "store"),
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"fetching {hdfs_root}/code/{wheel.name}" in run.stderr


def test_start_sh_runs_the_module_a_scoring_job_names(tmp_path: Path) -> None:
    shown = subprocess.run(
        [str(ROOT / "training" / "start.sh"), "--help"],
        env={
            "PYTHON": sys.executable,
            "FLEETDECK_ENTRY_MODULE": "training.score",
            "PATH": "/usr/bin:/bin",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr
    assert "--input" in shown.stdout  # training.score's usage, not training's
