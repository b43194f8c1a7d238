"""Adding a table to a published version on a local store: all or nothing, old table removed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from serving.manifest import Manifest
from serving.precomputed import write_table
from serving.store import ModelStore, StoreError, verify_folder
from tests.support.versions import describe, make_version


class Stop(Exception):
    pass


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(str(tmp_path / "store"))
    store.publish("digits", make_version(tmp_path / "v1"), describe)
    return store


def table(folder: Path, keys: list[str]) -> Path:
    write_table(folder, keys, [np.ones((len(keys), 10), np.float32)])
    return folder


def test_a_published_table_is_listed_with_sha256_and_the_rest_of_the_version_kept(
    store: ModelStore, tmp_path: Path
) -> None:
    before = store.manifest("digits", 1)
    updated = store.publish_table("digits", 1, table(tmp_path / "t", ["a", "b"]), {"rows": 2})
    assert updated == store.manifest("digits", 1)
    info = updated.precomputed
    assert info is not None
    assert info.rows == 2
    assert sorted(p for p in updated.files if p.startswith("precomputed/")) == [
        f"{info.path}/keys.npy",
        f"{info.path}/output-0.npy",
    ]
    assert {p: e for p, e in updated.files.items() if not p.startswith("precomputed/")} == dict(
        before.files
    )
    verify_folder(Path(store.version_path("digits", 1)), updated)


def test_a_new_table_replaces_the_listed_one_which_is_kept_one_generation_for_readers(
    store: ModelStore, tmp_path: Path
) -> None:
    def tables() -> set[str]:
        return {p.name for p in (Path(store.version_path("digits", 1)) / "precomputed").iterdir()}

    def folder(manifest: Manifest) -> str:
        assert manifest.precomputed is not None
        return manifest.precomputed.path.split("/")[1]

    first = store.publish_table("digits", 1, table(tmp_path / "t1", ["a"]), {"rows": 1})
    second = store.publish_table("digits", 1, table(tmp_path / "t2", ["a", "b", "c"]), {"rows": 3})
    assert not any(p.startswith(f"precomputed/{folder(first)}") for p in second.files)
    assert tables() == {folder(first), folder(second)}  # a fetch of the old manifest still works
    third = store.publish_table("digits", 1, table(tmp_path / "t3", ["a", "b"]), {"rows": 2})
    assert tables() == {folder(second), folder(third)}


@pytest.mark.parametrize("stop_at", [1, 2, 3, 4])
def test_a_publish_stopped_at_any_step_leaves_the_version_as_it_was(
    store: ModelStore, tmp_path: Path, stop_at: int
) -> None:
    version = Path(store.version_path("digits", 1))
    manifest_before = (version / "manifest.json").read_bytes()
    files_before = sorted(p.relative_to(version) for p in version.rglob("*") if p.is_file())
    calls = 0

    def checkpoint() -> None:
        nonlocal calls
        calls += 1
        if calls == stop_at:
            raise Stop

    with pytest.raises(Stop):
        store.publish_table("digits", 1, table(tmp_path / "t", ["a"]), {}, checkpoint)
    assert (version / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.relative_to(version) for p in version.rglob("*") if p.is_file()) == files_before


def test_a_table_made_while_another_was_published_is_refused_not_lost(
    store: ModelStore, tmp_path: Path
) -> None:
    def publish_meanwhile() -> None:
        if store.manifest("digits", 1).precomputed is None:
            store.publish_table("digits", 1, table(tmp_path / "other", ["x"]), {"rows": 1})

    with pytest.raises(StoreError, match="the manifest changed while this table was made"):
        store.publish_table(
            "digits", 1, table(tmp_path / "t", ["a"]), {"rows": 1}, publish_meanwhile
        )
    info = store.manifest("digits", 1).precomputed
    assert info is not None
    assert info.rows == 1
    version = Path(store.version_path("digits", 1))
    assert [p.name for p in (version / "precomputed").iterdir()] == [info.path.split("/")[1]]


def test_staging_left_by_a_killed_publisher_is_removed_by_the_next_a_live_ones_is_kept(
    store: ModelStore, tmp_path: Path
) -> None:
    tables = Path(store.version_path("digits", 1)) / "precomputed"
    killed, live = tables / ".staging-killed00000", tables / ".staging-live00000000"
    for folder in (killed, live):
        folder.mkdir(parents=True)
        (folder / "keys.npy").write_bytes(b"half written")
    a_day_and_more = time.time() - 25 * 3600
    os.utime(killed, (a_day_and_more, a_day_and_more))
    store.publish_table("digits", 1, table(tmp_path / "t", ["a"]), {"rows": 1})
    assert not killed.exists()
    assert live.exists()
