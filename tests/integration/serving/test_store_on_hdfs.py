"""The store and the predictor against a real HDFS (MiniDFSCluster through WebHDFS)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from serving.manifest import Manifest
from serving.store import ModelStore, StoreError, verify_folder
from tests.infra.hdfs_fixtures import HdfsCluster
from tests.support.fixtures import StartPredictor
from tests.support.models import TinyModel, reference_outputs
from tests.support.versions import describe, make_version


def republish(
    source: ModelStore, target: ModelStore, model: str, version: int, scratch: Path
) -> Manifest:
    """Publish a local version's files to another store under the same description."""
    original = source.manifest(model, version)
    files = scratch / "republish"
    shutil.copytree(
        source.version_path(model, version), files, ignore=shutil.ignore_patterns("manifest.json")
    )
    return target.publish(model, files, lambda number, entries: original)


def test_a_version_published_to_hdfs_is_fetched_verified_and_served(
    tiny_model: TinyModel, hdfs_root: str, start_predictor: StartPredictor, tmp_path: Path
) -> None:
    store = ModelStore(hdfs_root)
    published = republish(ModelStore(str(tiny_model.store_root)), store, "digits", 1, tmp_path)
    assert published.version == 1
    assert store.models() == ["digits"]
    assert store.versions("digits") == [1]
    assert store.manifest("digits", 1).files == published.files

    predictor = start_predictor("--model-uri", f"{hdfs_root}/digits")
    predictor.wait_ready()
    assert f"fetching {hdfs_root}/digits/1" in predictor.log()
    images = tiny_model.images[:4]
    answer = predictor.post("/v1/models/digits:predict", {"instances": images.tolist()})
    np.testing.assert_allclose(
        answer.json()["predictions"],
        reference_outputs(tiny_model, "tflite-int8", images),
        atol=1e-6,
    )


def test_a_corrupted_file_on_hdfs_is_caught_by_sha256(
    tiny_model: TinyModel,
    hdfs_root: str,
    hdfs_cluster: HdfsCluster,
    start_predictor: StartPredictor,
    tmp_path: Path,
) -> None:
    store = ModelStore(hdfs_root)
    republish(ModelStore(str(tiny_model.store_root)), store, "digits", 1, tmp_path)
    remote = f"{hdfs_cluster.path(hdfs_root)}/digits/1/model.int8.tflite"
    client = hdfs_cluster.client()
    with client.read(remote) as stream:
        data = bytearray(stream.read())
    data[100] ^= 0xFF
    client.write(remote, data=bytes(data), overwrite=True)

    with pytest.raises(StoreError, match=r"model\.int8\.tflite: sha256 mismatch"):
        store.fetch("digits", 1, tmp_path / "cache")
    predictor = start_predictor("--model-uri", f"{hdfs_root}/digits/1")
    predictor.wait_until(
        lambda: "failed" in predictor.get("/v2/health/ready").text, what="load failure"
    )
    assert "sha256 mismatch" in predictor.get("/v2/health/ready").json()["reason"]


def test_publishing_to_hdfs_is_atomic_for_readers_and_concurrent_publishers(
    hdfs_root: str, tmp_path: Path
) -> None:
    source = make_version(tmp_path / "export", payload=b"w" * 3_000_000)
    store = ModelStore(hdfs_root)
    store.publish("photos", source, describe)
    problems: list[str] = []
    done = threading.Event()

    def read() -> None:
        reader = ModelStore(hdfs_root)
        while not done.is_set():
            for version in reader.versions("photos"):
                try:
                    fetched = reader.fetch("photos", version, tmp_path / "reader-cache")
                    verify_folder(fetched.path, fetched.manifest)
                except StoreError as exc:
                    problems.append(str(exc))

    published: list[int] = []

    def publish() -> None:
        published.append(ModelStore(hdfs_root).publish("photos", source, describe).version)

    reader = threading.Thread(target=read)
    reader.start()
    publishers = [threading.Thread(target=publish) for _ in range(3)]
    try:
        for thread in publishers:
            thread.start()
        for thread in publishers:
            thread.join()
    finally:
        done.set()
        reader.join()
    assert problems == []
    assert sorted(published) == [2, 3, 4]
    assert store.versions("photos") == [1, 2, 3, 4]
    names = hdfs_listing(store)
    assert not [n for n in names if n.startswith(".staging-")]


def hdfs_listing(store: ModelStore) -> list[str]:
    return store.fs.list_dir(f"{store.root}/photos")


def test_an_unreachable_hdfs_is_a_clear_error() -> None:
    store = ModelStore("hdfs://127.0.0.1:1/models")
    with pytest.raises(StoreError, match=r"cannot reach WebHDFS at http://127\.0\.0\.1:1"):
        store.models()
