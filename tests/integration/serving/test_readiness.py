"""Readiness turns true only after fetch, verify, load and warm-up; a bad version never serves."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel


def test_not_ready_until_loaded_and_warm_while_live_from_the_start(
    tiny_model: TinyModel, start_predictor: StartPredictor
) -> None:
    # SavedModel loading imports TensorFlow: a window of seconds in which to watch.
    predictor = start_predictor(
        "--model-uri", str(tiny_model.version_dir), "--runtime", "savedmodel"
    )
    first = predictor.get("/v2/health/ready")
    live = predictor.get("/v2/health/live")
    assert first.status_code == 503
    assert first.json()["ready"] is False
    assert first.json()["phase"] in ("starting", "fetching", "loading", "warming-up")
    assert (live.status_code, live.json()) == (200, {"live": True})
    early = predictor.post(
        "/v1/models/digits:predict", {"instances": [tiny_model.images[0].tolist()]}
    )
    assert early.status_code in (404, 503)  # name unknown until resolved, then not ready
    predictor.wait_ready()
    assert predictor.get("/v2/health/ready").json() == {"ready": True}
    log = predictor.log()
    assert (
        log.index("fetching")
        < log.index("loading")
        < log.index("warming-up")
        < log.index("ready: serving digits version 1 with savedmodel")
    )


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupted_file_keeps_the_predictor_not_ready_and_says_why(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = tiny_model.copy_store(tmp_path)
    corrupt(store / "digits" / "1" / "model.int8.tflite")
    predictor = start_predictor("--model-uri", str(store / "digits"))
    predictor.wait_until(
        lambda: "failed" in predictor.get("/v2/health/ready").text, what="load failure"
    )
    ready = predictor.get("/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json()["phase"] == "failed"
    assert "model.int8.tflite: sha256 mismatch" in ready.json()["reason"]
    assert "model.int8.tflite: sha256 mismatch" in predictor.log()
    assert predictor.get("/v2/health/live").status_code == 200
    status = predictor.get("/v1/models/digits").json()["model_version_status"][0]
    assert status["state"] == "END"
    assert "sha256" in status["status"]["error_message"]


def test_a_file_missing_from_the_store_keeps_the_predictor_not_ready(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = tiny_model.copy_store(tmp_path)
    (store / "digits" / "1" / "saved_model" / "saved_model.pb").unlink()
    predictor = start_predictor("--model-uri", str(store / "digits" / "1"))
    predictor.wait_until(
        lambda: "failed" in predictor.get("/v2/health/ready").text, what="load failure"
    )
    reason = predictor.get("/v2/health/ready").json()["reason"]
    assert "saved_model/saved_model.pb" in reason
    assert "missing" in reason


def test_a_manifest_that_lies_about_a_file_is_caught_even_in_the_cache(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = tiny_model.copy_store(tmp_path)
    first = start_predictor("--model-uri", str(store / "digits"))
    first.wait_ready()
    first.stop()
    cached = tmp_path / "cache" / "digits" / "1" / "model.int8.tflite"
    assert cached.is_file()
    corrupt(cached)  # the cached copy rots; the store is still good
    second = start_predictor("--model-uri", str(store / "digits"))
    second.wait_ready()  # re-verified, found bad, fetched again from the store
    assert (
        second.post(
            "/v1/models/digits:predict", {"instances": [tiny_model.images[0].tolist()]}
        ).status_code
        == 200
    )


def test_unusable_model_uris_give_a_clear_reason(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    cases = {
        str(tmp_path / "nowhere"): "no such store",
        str(tiny_model.store_root): "--model-name",
    }
    for uri, words in cases.items():
        predictor = start_predictor("--model-uri", uri)
        predictor.wait_until(
            lambda p=predictor: "failed" in p.get("/v2/health/ready").text, what="load failure"
        )
        assert words in predictor.get("/v2/health/ready").json()["reason"]

    missing_version = start_predictor(
        "--model-uri", str(tiny_model.store_root), "--model-name", "digits", "--version", "7"
    )
    missing_version.wait_until(
        lambda: "failed" in missing_version.get("/v2/health/ready").text, what="load failure"
    )
    assert "version 7" in missing_version.get("/v2/health/ready").json()["reason"]


def test_a_runtime_the_version_does_not_carry_is_refused(
    tiny_model: TinyModel, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = tiny_model.copy_store(tmp_path)
    version = store / "digits" / "1"
    (version / "model.int8.tflite").unlink()
    manifest = json.loads((version / "manifest.json").read_text())
    del manifest["files"]["model.int8.tflite"]
    (version / "manifest.json").write_text(json.dumps(manifest))
    predictor = start_predictor("--model-uri", str(version), "--runtime", "tflite-int8")
    predictor.wait_until(
        lambda: "failed" in predictor.get("/v2/health/ready").text, what="load failure"
    )
    assert "carries only" in predictor.get("/v2/health/ready").json()["reason"]
