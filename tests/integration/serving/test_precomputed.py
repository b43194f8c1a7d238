"""Precomputed serving on real processes: the scoring job publishes a table into a real tiny
model's version, a real predictor answers keys from it, falls back to the model for unknown keys
sent with their tensors, and refuses to turn ready on a table that fails its checksum."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.store import ModelStore
from tests.infra.hdfs_fixtures import HdfsCluster
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel
from tests.support.predictor import ROOT, PredictorProcess
from training.data import KeyedInputs, load_keyed_inputs, write_sample

V1 = "/v1/models/digits:predict"
V2 = "/v2/models/digits/infer"


@dataclass(frozen=True)
class Scored:
    store: Path
    inputs: KeyedInputs
    table_path: str


def score(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "training.score", "--model", "digits", "--version", "1", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def scored(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> Scored:
    """The sample data set scored into a private copy of the tiny model's store."""
    store = tiny_model.copy_store(tmp_path_factory.mktemp("scored"))
    data = str(tiny_model.store_root.parent / "digits-data")
    score("--input", data, "--store", str(store))
    info = ModelStore(str(store)).manifest("digits", 1).precomputed
    assert info is not None
    return Scored(store, load_keyed_inputs(data), info.path)


@pytest.fixture(scope="module")
def predictor(
    scored: Scored, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PredictorProcess]:
    """One predictor serving the scored version (LiteRT int8, the manifest's default)."""
    folder = tmp_path_factory.mktemp("precomputed-predictor")
    process = PredictorProcess(
        folder / "predictor.log",
        *("--cache-dir", str(folder / "cache"), "--model-uri", str(scored.store / "digits")),
    )
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def v2_keys(keys: list[str], **extra: Any) -> dict[str, Any]:
    key = {"name": "key", "datatype": "BYTES", "shape": [len(keys)], "data": keys}
    return {"inputs": [key, *extra.pop("inputs", [])], **extra}


def v2_image(images: np.ndarray) -> dict[str, Any]:
    return {
        "name": "image",
        "datatype": "FP32",
        "shape": list(images.shape),
        "data": images.ravel().tolist(),
    }


def counters(predictor: PredictorProcess) -> dict[str, float]:
    text = predictor.get("/metrics").text
    found = re.findall(r"^fleetdeck_predictor_precomputed_(\w+?)(?:_total)? (\S+)$", text, re.M)
    return {name: float(value) for name, value in found}


def test_every_key_answers_what_the_model_predicts_for_its_example(
    predictor: PredictorProcess, scored: Scored
) -> None:
    keys, images = scored.inputs.keys.tolist(), scored.inputs.images
    for start in range(0, len(keys), 400):
        chunk = slice(start, start + 400)
        by_key = predictor.post(V1, {"keys": keys[chunk]})
        by_tensor = predictor.post(V1, {"instances": images[chunk].tolist()})
        assert by_key.status_code == by_tensor.status_code == 200
        np.testing.assert_allclose(
            by_key.json()["predictions"], by_tensor.json()["predictions"], atol=1e-6
        )
    assert counters(predictor)["hits"] >= len(keys)
    assert counters(predictor)["rows"] == len(keys)
    assert f"with tflite-int8 and a precomputed table of {len(keys)} keys" in predictor.log()


def test_v2_answers_a_bytes_key_input_like_the_tensor_and_keeps_the_request_id(
    predictor: PredictorProcess, scored: Scored
) -> None:
    keys = ["digit-00003", "digit-01000", "digit-00007"]
    index = [3, 1000, 7]
    by_key = predictor.post(V2, v2_keys(keys, id="req-1"))
    by_tensor = predictor.post(V2, {"inputs": [v2_image(scored.inputs.images[index])]})
    assert by_key.status_code == 200, by_key.text
    answer = by_key.json()
    assert answer["id"] == "req-1"
    assert answer["model_version"] == "1"
    assert answer["outputs"][0]["shape"] == [3, 10]
    np.testing.assert_allclose(
        answer["outputs"][0]["data"], by_tensor.json()["outputs"][0]["data"], atol=1e-6
    )


def test_unknown_keys_without_tensors_are_404_naming_each_key(
    predictor: PredictorProcess,
) -> None:
    before = counters(predictor)
    answer = predictor.post(V1, {"keys": ["digit-00001", "photo-404", "digit-99999"]})
    assert answer.status_code == 404
    assert answer.json()["missing_keys"] == ["photo-404", "digit-99999"]
    assert "2 key(s) not in the precomputed table of digits version 1" in answer.json()["error"]
    assert "send the tensors too" in answer.json()["error"]
    v2 = predictor.post(V2, v2_keys(["nope"]))
    assert v2.status_code == 404
    assert v2.json()["missing_keys"] == ["nope"]
    after = counters(predictor)
    assert after["misses"] - before["misses"] == 3
    assert after["hits"] - before["hits"] == 1
    assert after["fallbacks"] == before["fallbacks"]


def test_unknown_keys_sent_with_their_tensors_are_predicted_by_the_model(
    predictor: PredictorProcess, scored: Scored
) -> None:
    images = scored.inputs.images
    # A new photo (not in the table) between two known ones: its tensor is that of example 42.
    keys = ["digit-00010", "new-photo", "digit-00020"]
    sent = images[[10, 42, 20]]
    before = counters(predictor)
    v1 = predictor.post(V1, {"keys": keys, "instances": sent.tolist()})
    v2 = predictor.post(V2, v2_keys(keys, inputs=[v2_image(sent)]))
    expected = predictor.post(V1, {"instances": sent.tolist()}).json()["predictions"]
    assert v1.status_code == v2.status_code == 200
    np.testing.assert_allclose(v1.json()["predictions"], expected, atol=1e-6)
    np.testing.assert_allclose(
        np.reshape(v2.json()["outputs"][0]["data"], (3, 10)), expected, atol=1e-6
    )
    after = counters(predictor)
    assert after["fallbacks"] - before["fallbacks"] == 2
    assert after["misses"] - before["misses"] == 2
    assert after["hits"] - before["hits"] == 4


def test_key_requests_that_cannot_be_answered_say_what_to_fix(
    predictor: PredictorProcess, ready_predictor: PredictorProcess, scored: Scored
) -> None:
    mismatched = predictor.post(
        V1, {"keys": ["new-1", "new-2"], "instances": scored.inputs.images[:3].tolist()}
    )
    assert mismatched.status_code == 400
    assert "2 keys but 3 instances" in mismatched.json()["error"]
    not_strings = predictor.post(V1, {"keys": [1, 2]})
    assert not_strings.status_code == 400
    assert "keys are strings" in not_strings.json()["error"]
    # A predictor whose version carries no table.
    no_table = ready_predictor.post(V1, {"keys": ["digit-00001"]})
    assert no_table.status_code == 400
    assert "carries no precomputed table" in no_table.json()["error"]
    assert "python -m training.score" in no_table.json()["error"]


def test_tensor_requests_are_served_as_before_by_a_predictor_with_a_table(
    predictor: PredictorProcess, ready_predictor: PredictorProcess, scored: Scored
) -> None:
    body = {"instances": scored.inputs.images[:8].tolist()}
    with_table = predictor.post(V1, body).json()["predictions"]
    without = ready_predictor.post(V1, body).json()["predictions"]
    np.testing.assert_allclose(with_table, without, atol=1e-6)


def test_a_table_whose_sha256_does_not_match_keeps_the_predictor_not_ready(
    scored: Scored, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(scored.store, store)
    keys_file = store / "digits" / "1" / scored.table_path / "keys.npy"
    data = bytearray(keys_file.read_bytes())
    data[-3] ^= 0x01  # same size, different bytes: only the checksum can tell
    keys_file.write_bytes(bytes(data))

    predictor = start_predictor("--model-uri", str(store / "digits"))
    predictor.wait_until(
        lambda: predictor.get("/v2/health/ready").json().get("phase") == "failed",
        what="the load to fail",
    )
    ready = predictor.get("/v2/health/ready")
    assert ready.status_code == 503
    assert f"{scored.table_path}/keys.npy: sha256 mismatch" in ready.json()["reason"]
    assert predictor.post(V1, {"keys": ["digit-00001"]}).status_code == 503


def test_scoring_reads_hdfs_inputs_publishes_into_an_hdfs_store_and_is_served_from_it(
    tiny_model: TinyModel,
    hdfs_root: str,
    hdfs_cluster: HdfsCluster,
    start_predictor: StartPredictor,
    tmp_path: Path,
) -> None:
    # The tiny model's version, published to HDFS as is; the sample data set written there.
    store = ModelStore(f"{hdfs_root}/store")
    original = ModelStore(str(tiny_model.store_root)).manifest("digits", 1)
    files = tmp_path / "version"
    shutil.copytree(tiny_model.version_dir, files, ignore=shutil.ignore_patterns("manifest.json"))
    store.publish("digits", files, lambda number, entries: original)
    write_sample(f"{hdfs_root}/data")

    score("--input", f"{hdfs_root}/data", "--store", f"{hdfs_root}/store", "--runtime", "tflite")
    info = store.manifest("digits", 1).precomputed
    assert info is not None
    assert info.rows == 1797
    listing = hdfs_cluster.client().list(hdfs_cluster.path(f"{hdfs_root}/store/digits/1"))
    assert sorted(n for n in listing if "manifest" in n) == ["manifest.json"]  # none pending

    predictor = start_predictor("--model-uri", f"{hdfs_root}/store/digits", "--runtime", "tflite")
    predictor.wait_ready()
    keys = ["digit-00000", "digit-01796"]
    by_key = predictor.post(V1, {"keys": keys})
    images = load_keyed_inputs(str(tiny_model.store_root.parent / "digits-data")).images
    by_tensor = predictor.post(V1, {"instances": images[[0, 1796]].tolist()})
    assert by_key.status_code == 200, by_key.text
    np.testing.assert_allclose(
        by_key.json()["predictions"], by_tensor.json()["predictions"], atol=1e-5
    )
