"""The precomputed table format: sorted fixed-width keys and aligned output rows, memory-mapped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.precomputed import (
    KEYS_FILE,
    MISSING,
    PrecomputedTable,
    TableError,
    merge,
    output_file,
    v1_key_request,
    v2_key_position,
    v2_key_request,
    write_table,
)
from serving.tensors import Signature, TensorSpec

SIGNATURE = Signature(
    (TensorSpec("image", "float32", (-1, 2)),),
    (TensorSpec("scores", "float32", (-1, 3)), TensorSpec("label", "int64", (-1,))),
)


def outputs_for(count: int) -> list[np.ndarray]:
    scores = np.arange(count * 3, dtype=np.float32).reshape(count, 3)
    return [scores, np.arange(count, dtype=np.int64) * 10]


def table_of(folder: Path, keys: list[str]) -> PrecomputedTable:
    write_table(folder, keys, outputs_for(len(keys)))
    return PrecomputedTable.open(folder, SIGNATURE)


def test_each_key_finds_the_row_written_for_it_whatever_the_input_order(tmp_path: Path) -> None:
    keys = ["photo-9", "photo-10", "a", "zz", "photo-1", "é-unicode"]
    table = table_of(tmp_path, keys)
    found = table.lookup(list(reversed(keys)))
    assert found.hits == len(keys)
    rows = table.rows(found.rows)
    expected_scores, expected_labels = outputs_for(len(keys))
    np.testing.assert_array_equal(rows["scores"], expected_scores[::-1])
    np.testing.assert_array_equal(rows["label"], expected_labels[::-1])


def test_the_table_is_memory_mapped_not_read_into_memory(tmp_path: Path) -> None:
    table = table_of(tmp_path, ["a", "b"])
    assert isinstance(table.keys, np.memmap)
    assert all(isinstance(a, np.memmap) for a in table.outputs.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEYS_FILE, output_file(0), output_file(1)]


def test_unknown_keys_miss_including_longer_keys_sharing_a_prefix(tmp_path: Path) -> None:
    table = table_of(tmp_path, ["abc", "abd"])
    found = table.lookup(["abc", "abcd", "ab", "zzz", "abc\0", "abd"])
    assert found.missing.tolist() == [1, 2, 3, 4]
    assert found.rows[found.missing].tolist() == [MISSING] * 4
    assert found.hits == 2


def test_duplicate_empty_and_nul_keys_are_refused_with_the_key_named(tmp_path: Path) -> None:
    with pytest.raises(TableError, match=r"1 duplicate key\(s\), e.g. 'b'"):
        write_table(tmp_path, ["a", "b", "b"], outputs_for(3))
    with pytest.raises(TableError, match=r"key 1 .* must be a non-empty string"):
        write_table(tmp_path, ["a", ""], outputs_for(2))
    with pytest.raises(TableError, match="NUL"):
        write_table(tmp_path, ["a", "b\0"], outputs_for(2))
    with pytest.raises(TableError, match="3 rows for 2 keys"):
        write_table(tmp_path, ["a", "b"], outputs_for(3))


def test_a_table_from_another_model_is_refused_with_what_differs(tmp_path: Path) -> None:
    write_table(tmp_path, ["a"], [np.zeros((1, 5), np.float32), np.zeros(1, np.int64)])
    with pytest.raises(TableError, match=r"output-0.npy: holds float32 rows of shape \[5\]"):
        PrecomputedTable.open(tmp_path, SIGNATURE)
    (tmp_path / output_file(0)).unlink()
    with pytest.raises(TableError, match=r"output-0\.npy: missing"):
        PrecomputedTable.open(tmp_path, SIGNATURE)


def test_merge_puts_model_rows_where_the_table_missed(tmp_path: Path) -> None:
    table = table_of(tmp_path, ["a", "b"])
    found = table.lookup(["b", "new", "a"])
    predicted: dict[str, np.ndarray] = {
        "scores": np.full((1, 3), -1, np.float32),
        "label": np.array([-7], np.int64),
    }
    merged = merge(table, found, predicted)
    assert merged["label"].tolist() == [10, -7, 0]
    assert merged["scores"][1].tolist() == [-1, -1, -1]


def test_v1_key_requests_keep_tensors_for_fallback_and_the_answer_format() -> None:
    keyed, rows = v1_key_request({"keys": ["a"]})
    assert (keyed.keys, keyed.tensors, rows) == (["a"], None, True)
    keyed, rows = v1_key_request({"keys": ["a"], "inputs": [[1, 2]]})
    assert keyed.tensors == {"inputs": [[1, 2]]}
    assert rows is False
    with pytest.raises(BadRequest, match="non-empty list of key strings"):
        v1_key_request({"keys": []})
    with pytest.raises(BadRequest, match=r"keys are strings, got 3"):
        v1_key_request({"keys": ["a", 3]})


def test_v2_key_input_is_found_checked_and_split_from_the_tensors() -> None:
    key = {"name": "key", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}
    image = {"name": "image", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}
    assert v2_key_position({"inputs": [image]}) is None
    body = {"id": "r", "inputs": [image, key]}
    assert v2_key_position(body) == 1
    keyed = v2_key_request(body, 1)
    assert keyed.keys == ["a", "b"]
    assert keyed.tensors == {"id": "r", "inputs": [image]}
    assert v2_key_request({"inputs": [key]}, 0).tensors is None
    with pytest.raises(BadRequest, match="datatype must be 'BYTES'"):
        v2_key_request({"inputs": [{**key, "datatype": "FP32"}]}, 0)
    with pytest.raises(BadRequest, match=r"shape must be \[2\]"):
        v2_key_request({"inputs": [{**key, "shape": [3]}]}, 0)


def test_a_single_key_is_found_or_missed_like_in_a_batch(tmp_path: Path) -> None:
    keys = ["abc", "abd", "b"]
    table = table_of(tmp_path, keys)
    for asked in ("abc", "abcd", "ab", "abc\0", "zzz", "b", "0"):
        alone = table.lookup([asked])
        in_batch = table.lookup([asked, "abd"])
        assert alone.hits == in_batch.hits - 1
        assert alone.rows.tolist() == in_batch.rows[:1].tolist()
        if alone.hits:
            np.testing.assert_array_equal(
                table.rows(alone.rows)["scores"], outputs_for(3)[0][[keys.index(asked)]]
            )
