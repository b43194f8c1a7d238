"""The batch scoring job (``python -m training.score``) as a real process on a real tiny model:
it publishes a verified table into the version, logs progress, and publishes nothing when
stopped or given bad inputs."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serving.precomputed import KEYS_FILE, PrecomputedTable
from serving.store import ModelStore
from tests.integration.training.conftest import ROOT, TrainingRun, run_training
from tests.support.models import TinyModel, train_tiny_model
from training.data import load_dataset, load_keyed_inputs, write_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return train_tiny_model(tmp_path_factory.mktemp("score") / "store")


@pytest.fixture
def store(trained: TinyModel, tmp_path: Path) -> Path:
    """A private copy of the trained store: each test scores into its own."""
    return trained.copy_store(tmp_path)


def data_of(model: TinyModel) -> str:
    return str(model.store_root.parent / "digits-data")


def run_score(*args: str, timeout: float = 300) -> TrainingRun:
    return run_training(command=[sys.executable, "-m", "training.score", *args], timeout=timeout)


def test_scoring_publishes_a_table_listed_with_its_sha256_and_logs_progress(
    trained: TinyModel, store: Path, tmp_path: Path
) -> None:
    run = run_score(
        "--model", "digits", "--version", "1", "--input", data_of(trained), "--store", str(store)
    )
    assert run.returncode == 0, run.stdout + run.stderr
    start, *_ = run.events("start")
    progress = run.events("progress")
    published, *_ = run.events("published")
    assert start["total"] == 1797
    assert start["runtime"] == "tflite-int8"
    assert progress[-1]["done"] == progress[-1]["total"] == 1797
    assert progress[-1]["examples_per_s"] > 0
    assert published["rows"] == 1797
    assert any("published a table of 1,797 keys" in line for line in run.human_lines())

    manifest = ModelStore(str(store)).manifest("digits", 1)
    info = manifest.precomputed
    assert info is not None
    assert info.path == published["path"]
    assert info.rows == 1797
    assert info.details["runtime"] == "tflite-int8"
    assert f"{info.path}/{KEYS_FILE}" in manifest.files
    # The store verifies the table like every other file, and it opens against the signature.
    fetched = ModelStore(str(store)).fetch("digits", 1, tmp_path / "cache")
    table = PrecomputedTable.open(fetched.path / info.path, manifest.signature)
    assert len(table) == 1797
    # Nothing else changed in the version, and no staging is left behind.
    original = ModelStore(str(trained.store_root)).manifest("digits", 1)
    assert {p: e for p, e in manifest.files.items() if not p.startswith("precomputed/")} == dict(
        original.files
    )
    assert [p.name for p in (store / "digits" / "1" / "precomputed").iterdir()] == [
        info.path.split("/")[1]
    ]


def test_scoring_again_replaces_the_table_keeping_the_old_one_for_one_generation(
    trained: TinyModel, store: Path
) -> None:
    args = ("--model", "digits", "--version", "1", "--input", data_of(trained))
    first = run_score(*args, "--store", str(store), "--runtime", "tflite")
    second = run_score(*args, "--store", str(store), "--runtime", "savedmodel")
    assert first.returncode == second.returncode == 0, second.stdout + second.stderr
    info = ModelStore(str(store)).manifest("digits", 1).precomputed
    assert info is not None
    assert info.path == second.events("published")[0]["path"]
    assert info.details["runtime"] == "savedmodel"
    tables = {p.name for p in (store / "digits" / "1" / "precomputed").iterdir()}
    first_table = first.events("published")[0]["path"].split("/")[1]
    assert tables == {info.path.split("/")[1], first_table}


def test_a_scoring_job_stopped_by_sigterm_mid_run_publishes_nothing(
    trained: TinyModel, store: Path, tmp_path: Path
) -> None:
    # Four copies of the sample, one example per call through the SavedModel: seconds of
    # scoring, so the signal lands while batches are running.
    sample = load_dataset(data_of(trained))
    copies = 4
    keys = np.array([f"{k}-{c}" for c in range(copies) for k in sample.keys])
    inputs = tmp_path / "inputs"
    write_dataset(
        str(inputs),
        sample.tags,
        np.concatenate([sample.images] * copies),
        np.concatenate([sample.labels] * copies),
        keys,
    )
    manifest_before = (store / "digits" / "1" / "manifest.json").read_bytes()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training.score",
            *("--model", "digits", "--version", "1", "--input", str(inputs)),
            *("--store", str(store), "--runtime", "savedmodel", "--batch-size", "1"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith('{"event": "start"'):
            process.send_signal(signal.SIGTERM)
            break
    rest, errors = process.communicate(timeout=120)
    run = TrainingRun(process.returncode, "".join(lines) + rest, errors)

    assert run.returncode == 143, run.stdout + run.stderr
    interrupted, *_ = run.events("interrupted")
    assert interrupted["signal"] == "SIGTERM"
    assert interrupted["done"] < interrupted["total"] == len(keys)
    assert not run.events("published")
    assert (store / "digits" / "1" / "manifest.json").read_bytes() == manifest_before
    leftovers = list((store / "digits" / "1").glob("precomputed/*")) + list(
        (store / "digits" / "1").glob(".manifest*")
    )
    assert leftovers == []


def test_inputs_without_keys_with_duplicate_keys_or_the_wrong_shape_fail_before_publishing(
    trained: TinyModel, store: Path, tmp_path: Path
) -> None:
    sample = load_dataset(data_of(trained))
    no_keys = tmp_path / "no-keys"
    no_keys.mkdir()
    with (no_keys / "shard-00000.npz").open("wb") as out:
        np.savez(out, images=sample.images[:5])
    duplicates = tmp_path / "duplicates"
    write_dataset(
        str(duplicates), sample.tags, sample.images[:4], sample.labels[:4], np.array(["a"] * 4)
    )
    wrong_shape = tmp_path / "wrong-shape"
    write_dataset(
        str(wrong_shape),
        sample.tags,
        np.zeros((4, 6, 6, 1), np.float32),
        sample.labels[:4],
        sample.keys[:4],
    )
    manifest_before = (store / "digits" / "1" / "manifest.json").read_bytes()
    for inputs, message in (
        (no_keys, "no 'keys' array; scoring needs a key per example"),
        (duplicates, "3 duplicate key(s), e.g. 'a'"),
        (wrong_shape, "examples of shape [6, 6, 1], but digits version 1 takes image [8, 8, 1]"),
    ):
        run = run_score(
            "--model", "digits", "--version", "1", "--input", str(inputs), "--store", str(store)
        )
        assert run.returncode == 1
        failed = run.events("failed")[-1]
        assert message in failed["error"]
        assert not run.events("start")
    assert (store / "digits" / "1" / "manifest.json").read_bytes() == manifest_before


def test_a_missing_version_fails_naming_the_published_ones_and_bad_usage_exits_2(
    trained: TinyModel, store: Path
) -> None:
    run = run_score(
        "--model", "digits", "--version", "7", "--input", data_of(trained), "--store", str(store)
    )
    assert run.returncode == 1
    assert "version 7 of model 'digits' not found" in run.events("failed")[-1]["error"]
    assert "(published: 1)" in run.events("failed")[-1]["error"]
    usage = run_score("--model", "digits", "--version", "one")
    assert usage.returncode == 2
    assert "--version: must be a positive integer or 'latest'" in usage.stderr


def test_the_job_reads_its_flags_from_the_environment_like_training(
    trained: TinyModel, store: Path
) -> None:
    run = run_training(
        command=[sys.executable, "-m", "training.score"],
        env={
            "FLEETDECK_MODEL": "digits",
            "FLEETDECK_VERSION": "latest",
            "FLEETDECK_INPUT": data_of(trained),
            "FLEETDECK_STORE": str(store),
            "FLEETDECK_BATCH_SIZE": "256",
            "FLEETDECK_RUN_ID": "score-from-env",
        },
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.events("start")[0]["batch_size"] == 256
    assert run.events("published")[0]["run_id"] == "score-from-env"
    info = ModelStore(str(store)).manifest("digits", 1).precomputed
    assert info is not None
    assert info.details["job"] == "score-from-env"


def test_keyed_inputs_are_read_shard_by_shard_in_order(trained: TinyModel) -> None:
    inputs = load_keyed_inputs(data_of(trained))
    assert inputs.shards == 4
    assert inputs.keys[:2].tolist() == ["digit-00000", "digit-00001"]
    np.testing.assert_array_equal(inputs.images, load_dataset(data_of(trained)).images)
