"""A real training run: streamed logs, three exported formats, a manifest that tells it all."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from serving.runtime import LiteRTRuntime
from serving.store import ModelStore
from tests.integration.training.conftest import run_training
from tests.support.fixtures import StartPredictor
from training.data import load_dataset, write_sample
from training.fit import TrainingSpec, train
from training.logs import TrainingLog

EPOCH_FIELDS = {
    "epoch",
    "epochs",
    "loss",
    "accuracy",
    "val_accuracy",
    "val_loss",
    "examples_per_s",
    "seconds",
}


def test_a_run_streams_one_human_and_one_json_line_per_epoch_and_publishes(
    sample_data: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    run = run_training(
        "--model",
        "digits",
        "--data",
        sample_data,
        "--store",
        str(store),
        "--epochs",
        "2",
        "--param",
        "width=8",
        "--run-id",
        "run-42",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (start,) = run.events("start")
    assert start["device"] == "CPU"
    assert start["run_id"] == "run-42"
    epochs = run.events("epoch")
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(set(e) >= EPOCH_FIELDS for e in epochs)
    assert all(e["examples_per_s"] > 0 for e in epochs)
    (exported,) = run.events("exported")
    assert exported["model"] == "digits"
    assert exported["version"] == 1
    assert exported["uri"] == str(store / "digits" / "1")
    human = run.human_lines()
    assert any("training digits on CPU" in line for line in human)
    assert sum("epoch " in line and "examples/s" in line for line in human) == 2
    assert any("published digits version 1" in line for line in human)
    assert [e["event"] for e in run.events()] == ["start", "epoch", "epoch", "exported"]


def test_the_manifest_records_metrics_parameters_data_and_every_checksum(
    sample_data: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    run = run_training(
        "--model",
        "digits",
        "--data",
        sample_data,
        "--store",
        str(store),
        "--epochs",
        "1",
        "--learning-rate",
        "0.01",
        "--param",
        "width=8",
        "--param",
        "depth=1",
        "--run-id",
        "run-7",
        "--seed",
        "3",
    )
    assert run.returncode == 0, run.stderr
    manifest = ModelStore(str(store)).manifest("digits", 1)
    assert manifest.labels == tuple(f"digit-{n}" for n in range(10))
    assert manifest.training["run_id"] == "run-7"
    assert manifest.training["data"] == sample_data
    assert manifest.training["params"] == {"width": 8, "depth": 1}
    assert manifest.training["learning_rate"] == 0.01
    assert manifest.training["seed"] == 3
    assert set(manifest.metrics) >= {
        "accuracy",
        "tflite_accuracy",
        "int8_accuracy",
        "int8_accuracy_delta",
    }
    assert manifest.runtimes() == ["savedmodel", "tflite", "tflite-int8"]
    assert "saved_model/saved_model.pb" in manifest.files
    assert all(len(entry.sha256) == 64 for entry in manifest.files.values())
    delta = manifest.metrics["int8_accuracy_delta"]
    assert manifest.default_runtime == ("tflite-int8" if delta >= -0.01 else "tflite")


def test_the_exported_version_serves_the_trained_models_predictions(
    sample_data: str, tmp_path: Path, start_predictor: StartPredictor
) -> None:
    spec = TrainingSpec(
        model="tags",
        data=sample_data,
        store=str(tmp_path / "store"),
        epochs=2,
        params={"width": 8},
        run_id="in-process",
    )
    trained = train(spec, TrainingLog(io.StringIO()))
    images = load_dataset(sample_data).images[:16]
    expected = trained.model.predict(images, verbose=0)
    for runtime, tolerance in (("savedmodel", 1e-5), ("tflite", 1e-4)):
        predictor = start_predictor("--model-uri", f"{spec.store}/tags", "--runtime", runtime)
        predictor.wait_ready()
        answer = predictor.post("/v1/models/tags:predict", {"instances": images.tolist()})
        assert answer.status_code == 200
        np.testing.assert_allclose(answer.json()["predictions"], expected, atol=tolerance)


def test_int8_accuracy_is_what_the_manifest_records(sample_data: str, tmp_path: Path) -> None:
    spec = TrainingSpec(
        model="tags",
        data=sample_data,
        store=str(tmp_path / "store"),
        epochs=2,
        params={"width": 8},
        run_id="int8",
        seed=11,
    )
    manifest = train(spec, TrainingLog(io.StringIO())).manifest
    _, validation = load_dataset(sample_data).split(spec.val_split, spec.seed)
    folder = tmp_path / "store" / "tags" / "1"
    accuracies = {}
    for name in ("model.tflite", "model.int8.tflite"):
        runtime = LiteRTRuntime(folder / name, manifest.signature, (64,), name=name)
        scores = runtime.predict({"image": validation.images})["scores"]
        accuracies[name] = float((scores.argmax(axis=1) == validation.labels).mean())
    assert accuracies["model.int8.tflite"] == pytest.approx(manifest.metrics["int8_accuracy"])
    assert accuracies["model.tflite"] == pytest.approx(manifest.metrics["tflite_accuracy"])
    assert manifest.metrics["int8_accuracy_delta"] == pytest.approx(
        accuracies["model.int8.tflite"] - accuracies["model.tflite"]
    )
    assert manifest.metrics["accuracy"] > 0.5  # it learned something in two epochs


def test_training_reads_its_data_from_hdfs_and_publishes_to_hdfs(
    hdfs_root: str, tmp_path: Path
) -> None:
    data, store = f"{hdfs_root}/digits-data", f"{hdfs_root}/models"
    write_sample(data)
    run = run_training(
        "--model",
        "digits",
        "--data",
        data,
        "--store",
        store,
        "--epochs",
        "1",
        "--param",
        "width=8",
        "--no-int8",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (exported,) = run.events("exported")
    assert exported["uri"] == f"{store}/digits/1"
    manifest = ModelStore(store).manifest("digits", 1)
    assert manifest.runtimes() == ["savedmodel", "tflite"]
    assert manifest.default_runtime == "tflite"
