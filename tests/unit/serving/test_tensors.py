"""Input validation: what a model accepts, and what each refusal says."""

from __future__ import annotations

import numpy as np
import pytest

from serving.errors import BadRequest
from serving.tensors import TensorSpec, from_flat, to_batch

IMAGE = TensorSpec("image", "float32", (-1, 2, 2))
TOKENS = TensorSpec("tokens", "int32", (-1, 3))


def test_a_well_formed_batch_becomes_an_array_of_the_signature_dtype() -> None:
    batch = to_batch(IMAGE, [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]], where="instances")
    assert batch.dtype == np.float32
    assert batch.shape == (2, 2, 2)


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        (IMAGE, [[1, 2, 3, 4]], r"shape \[batch, 2, 2\]"),
        (IMAGE, [[[1, 2], [3]]], "rectangular"),
        (IMAGE, [[["a", "b"], ["c", "d"]]], "strings"),
        (IMAGE, [[[True, False], [True, True]]], "booleans"),
        (IMAGE, [[[float("nan"), 1], [1, 1]]], "NaN"),
        (IMAGE, [[[float("inf"), 1], [1, 1]]], "infinity"),
        (IMAGE, [], "shape"),
        (IMAGE, [[[None, 1], [1, 1]]], "mixed"),
        (TOKENS, [[1.5, 2, 3]], "int32"),
        (TOKENS, [[1, 2, 2**40]], "outside int32"),
    ],
)
def test_bad_values_are_refused_with_what_to_fix(
    spec: TensorSpec, value: object, words: str
) -> None:
    with pytest.raises(BadRequest, match=words):
        to_batch(spec, value, where="instances")


def test_flat_v2_data_is_reshaped_and_its_size_checked() -> None:
    assert from_flat(IMAGE, [1, 2, 3, 4], [1, 2, 2], where="x").shape == (1, 2, 2)
    assert from_flat(IMAGE, [[1, 2], [3, 4]], [1, 2, 2], where="x").shape == (1, 2, 2)
    with pytest.raises(BadRequest, match="has 3 elements but 'shape' \\[1, 2, 2\\] needs 4"):
        from_flat(IMAGE, [1, 2, 3], [1, 2, 2], where="x")
    with pytest.raises(BadRequest, match="non-negative integers"):
        from_flat(IMAGE, [1, 2, 3, 4], [1, -2, -2], where="x")


@pytest.mark.parametrize(
    ("shape", "data"),
    [
        ([2**62, 4], []),  # the element count overflows int64
        ([2**62, 4], [0] * 16),
        ([2**40, 2**40, 0], []),
        ([2**70, 0], []),
        ([True, 2, 2], [0] * 4),  # JSON true is not a dimension
        ([1.0, 2, 2], [0] * 4),
        ([-1, 2, 2], [0] * 4),
        ("1,2,2", [0] * 4),
    ],
)
def test_a_v2_shape_that_overflows_or_is_not_non_negative_integers_is_refused(
    shape: object, data: list[int]
) -> None:
    with pytest.raises(BadRequest, match="'shape'"):
        from_flat(IMAGE, data, shape, where="x")


def test_a_long_list_is_converted_a_slice_at_a_time_to_the_same_array() -> None:
    rows = np.arange(40_000 * 4, dtype=np.float32).reshape(40_000, 2, 2)
    batch = to_batch(IMAGE, rows.tolist(), where="instances")
    assert np.array_equal(batch, rows)
    flat = from_flat(IMAGE, rows.ravel().tolist(), [40_000, 2, 2], where="x")
    assert np.array_equal(flat, rows)
    ragged = rows.tolist()
    ragged[-1] = [[1, 2]]
    with pytest.raises(BadRequest, match="rectangular"):
        to_batch(IMAGE, ragged, where="instances")
