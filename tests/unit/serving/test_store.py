"""The model store on a local root: layout, atomic publish, fetch and checksum verification."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from serving.manifest import FileEntry, Manifest
from serving.store import ModelStore, StoreError, VerificationError, resolve, verify_folder
from tests.support.versions import describe, make_version


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return make_version(tmp_path / "export")


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(str(tmp_path / "store"))


def test_publishing_numbers_versions_and_writes_a_complete_manifest(
    store: ModelStore, source: Path
) -> None:
    first = store.publish("photos", source, describe)
    second = store.publish("photos", source, describe)
    assert (first.version, second.version) == (1, 2)
    assert store.models() == ["photos"]
    assert store.versions("photos") == [1, 2]
    assert store.latest_version("photos") == 2
    manifest = store.manifest("photos", 2)
    assert manifest.model == "photos"
    assert manifest.labels == ("cat", "dog")
    assert sorted(manifest.files) == [
        "model.tflite",
        "saved_model/saved_model.pb",
        "saved_model/variables/variables.index",
    ]
    assert manifest.files["model.tflite"].size == len(b"model-bytes")
    assert manifest.runtimes() == ["savedmodel", "tflite"]
    raw = json.loads(Path(store.root, "photos", "2", "manifest.json").read_text())
    assert raw["format"] == 1
    assert raw["training"] == {"run": "r1"}


def test_a_failed_publish_leaves_no_version_and_no_staging(store: ModelStore, source: Path) -> None:
    def broken(version: int, files: Mapping[str, FileEntry]) -> Manifest:
        raise RuntimeError("export crashed")

    with pytest.raises(RuntimeError):
        store.publish("photos", source, broken)
    assert list(Path(store.root, "photos").iterdir()) == []
    with pytest.raises(StoreError, match="no published version"):
        store.latest_version("photos")


def test_staging_folders_and_half_written_versions_are_never_listed(
    store: ModelStore, source: Path
) -> None:
    store.publish("photos", source, describe)
    model = Path(store.root, "photos")
    (model / ".staging-dead").mkdir()
    (model / "2").mkdir()  # a folder without a manifest is not a version
    assert store.versions("photos") == [1]
    assert store.publish("photos", source, describe).version == 3  # 2 is never reused
    assert store.remove_stale_staging("photos") == []  # fresh: maybe a live publisher's
    assert store.remove_stale_staging("photos", older_than=0) == [".staging-dead"]


def test_concurrent_publishers_each_get_their_own_complete_version(
    store: ModelStore, source: Path
) -> None:
    versions: list[int] = []
    lock = threading.Lock()

    def publish() -> None:
        manifest = store.publish("photos", source, describe)
        with lock:
            versions.append(manifest.version)

    threads = [threading.Thread(target=publish) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == list(range(1, 9))
    assert store.versions("photos") == list(range(1, 9))
    for version in versions:
        assert store.manifest("photos", version).version == version


def test_a_reader_never_sees_a_half_written_version(store: ModelStore, tmp_path: Path) -> None:
    big = make_version(tmp_path / "big", payload=b"x" * 20_000_000)
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            for version in store._published_versions("photos"):
                manifest = store.manifest("photos", version)
                verify_folder(Path(store.root, "photos", str(version)), manifest)
                seen.append(version)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            store.publish("photos", big, describe)
    finally:
        done.set()
        reader.join()
    assert store.versions("photos") == [1, 2, 3]


def test_fetch_copies_into_the_cache_and_verifies(
    store: ModelStore, source: Path, tmp_path: Path
) -> None:
    store.publish("photos", source, describe)
    fetched = store.fetch("photos", 1, tmp_path / "cache")
    assert fetched.path == tmp_path / "cache" / "photos" / "1"
    assert (fetched.path / "model.tflite").read_bytes() == b"model-bytes"
    assert store.fetch("photos", 1, tmp_path / "cache").path == fetched.path  # cache reused


def test_a_corrupted_file_fails_verification_naming_the_file(
    store: ModelStore, source: Path, tmp_path: Path
) -> None:
    store.publish("photos", source, describe)
    Path(store.root, "photos", "1", "model.tflite").write_bytes(b"model-bytez")
    with pytest.raises(VerificationError, match=r"model.tflite: sha256 mismatch"):
        store.fetch("photos", 1, tmp_path / "cache")
    assert not (tmp_path / "cache" / "photos" / "1").exists()


def test_a_missing_file_fails_verification(store: ModelStore, source: Path, tmp_path: Path) -> None:
    store.publish("photos", source, describe)
    Path(store.root, "photos", "1", "saved_model", "saved_model.pb").unlink()
    with pytest.raises(VerificationError, match=r"saved_model\.pb.*missing from the store"):
        store.fetch("photos", 1, tmp_path / "cache")


def test_a_rotten_cache_is_fetched_again(store: ModelStore, source: Path, tmp_path: Path) -> None:
    store.publish("photos", source, describe)
    cached = store.fetch("photos", 1, tmp_path / "cache").path
    (cached / "model.tflite").write_bytes(b"rot")
    again = store.fetch("photos", 1, tmp_path / "cache")
    assert (again.path / "model.tflite").read_bytes() == b"model-bytes"


def test_missing_models_and_versions_are_clear_errors(store: ModelStore, source: Path) -> None:
    store.publish("photos", source, describe)
    with pytest.raises(StoreError, match="model 'music' not found"):
        store.versions("music")
    with pytest.raises(StoreError, match=r"version 4 of model 'photos' not found.*published: 1"):
        store.manifest("photos", 4)
    with pytest.raises(StoreError, match="invalid model name"):
        store.versions("../etc")


def test_a_model_uri_may_name_a_root_a_model_or_a_version(store: ModelStore, source: Path) -> None:
    store.publish("photos", source, describe)
    root = store.root_uri
    assert resolve(root, model="photos").model == "photos"
    assert resolve(f"file://{root}", model="photos").root == f"file://{root}"
    assert resolve(f"{root}/photos").model == "photos"
    by_version = resolve(f"{root}/photos/1/")
    assert (by_version.root, by_version.model, by_version.version) == (root, "photos", 1)
    with pytest.raises(StoreError, match="--model-name"):
        resolve(root)
    with pytest.raises(StoreError, match="no such store"):
        resolve(f"{root}/nothing-here")


@pytest.mark.parametrize(
    ("root", "words"),
    [("hdfs://namenode/models", "needs host and port"), ("s3://bucket/models", "unsupported")],
)
def test_unusable_roots_say_what_to_write_instead(root: str, words: str) -> None:
    with pytest.raises(StoreError, match=words):
        ModelStore(root)
