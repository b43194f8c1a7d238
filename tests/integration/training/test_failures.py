"""Bad data fails fast naming the file; an interrupted run publishes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.training.conftest import ROOT, TrainingRun, run_training
from training.data import DataError, load_dataset, write_dataset


def good_arrays(n: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (
        rng.random((n, 8, 8, 1), dtype=np.float32),
        rng.integers(0, 3, n),
        np.array([f"k{i}" for i in range(n)]),
    )


def save_shard(path: Path, **arrays: np.ndarray) -> None:
    with path.open("wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write_dataset(str(folder), ["cat", "dog", "bird"], *good_arrays(), shards=2)
    return folder


def test_a_missing_tags_file_is_named(dataset: Path) -> None:
    (dataset / "tags.txt").unlink()
    with pytest.raises(DataError, match=r"tags\.txt: missing"):
        load_dataset(str(dataset))


def test_images_of_the_wrong_shape_name_the_shard(dataset: Path) -> None:
    images, labels, _ = good_arrays()
    save_shard(dataset / "shard-00001.npz", images=images[:, :, :, 0], labels=labels)
    with pytest.raises(DataError, match=r"shard-00001\.npz: images must be \(n, height"):
        load_dataset(str(dataset))


def test_shards_that_disagree_on_image_size_are_named(dataset: Path) -> None:
    save_shard(
        dataset / "shard-00001.npz",
        images=np.zeros((4, 6, 6, 1), np.float32),
        labels=np.zeros(4, np.int64),
    )
    with pytest.raises(DataError, match=r"shard-00001\.npz: images of shape \(6, 6, 1\)"):
        load_dataset(str(dataset))


def test_an_empty_shard_is_named(dataset: Path) -> None:
    save_shard(
        dataset / "shard-00001.npz",
        images=np.zeros((0, 8, 8, 1), np.float32),
        labels=np.zeros(0, np.int64),
    )
    with pytest.raises(DataError, match=r"shard-00001\.npz: empty shard"):
        load_dataset(str(dataset))


def test_labels_beyond_the_tags_are_named(dataset: Path) -> None:
    images, _, _ = good_arrays(4)
    save_shard(dataset / "shard-00000.npz", images=images, labels=np.array([0, 1, 2, 3]))
    with pytest.raises(DataError, match=r"shard-00000\.npz: labels must be integers in 0\.\.2"):
        load_dataset(str(dataset))


def test_a_corrupt_shard_is_named(dataset: Path) -> None:
    (dataset / "shard-00000.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"shard-00000\.npz: not a readable \.npz shard"):
        load_dataset(str(dataset))


def test_an_unreachable_hdfs_fails_fast_with_exit_1_and_the_reason(tmp_path: Path) -> None:
    run = run_training(
        "--model",
        "digits",
        "--data",
        "hdfs://127.0.0.1:1/datasets/digits",
        "--store",
        str(tmp_path / "store"),
    )
    assert run.returncode == 1
    (failed,) = run.events("failed")
    assert "cannot read data set hdfs://127.0.0.1:1/datasets/digits" in failed["error"]
    assert "cannot reach WebHDFS" in failed["error"]
    assert not (tmp_path / "store").exists()


def test_bad_flags_and_unknown_params_are_refused(sample_data: str, tmp_path: Path) -> None:
    usage = run_training("--model", "digits", "--data", sample_data)
    assert usage.returncode == 2
    assert "--store" in usage.stderr
    unknown = run_training(
        "--model",
        "digits",
        "--data",
        sample_data,
        "--store",
        str(tmp_path),
        "--param",
        "colour=red",
    )
    assert unknown.returncode == 1
    assert (
        "unknown --param colour; the model takes: width, depth"
        in unknown.events("failed")[0]["error"]
    )


def test_sigterm_stops_training_and_publishes_nothing(sample_data: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "training",
            "--model",
            "digits",
            "--data",
            sample_data,
            "--store",
            str(store),
            "--epochs",
            "500",
            "--batch-size",
            "8",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until training is under way
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith('{"event": "epoch"'):
            break
    process.send_signal(signal.SIGTERM)
    rest, stderr = process.communicate(timeout=120)
    run = TrainingRun(process.returncode, "".join(lines) + rest, stderr)
    assert run.returncode == 143
    (interrupted,) = run.events("interrupted")
    assert interrupted["signal"] == "SIGTERM"
    assert run.events("exported") == []
    assert not (store / "digits").exists() or list((store / "digits").iterdir()) == []
