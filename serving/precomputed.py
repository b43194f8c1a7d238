"""Precomputed tables: a model version's outputs for known keys, answered without the model.

A table is a folder in the version (``precomputed/<id>/``, listed with sha256 in the manifest
like every other file) of plain ``.npy`` files that numpy memory-maps, so a large table costs
little resident memory and opens in constant time:

    keys.npy        the keys, UTF-8, sorted bytewise, fixed width (numpy ``S<width>``)
    output-<i>.npy  the i-th output of the signature, one row per key, in the keys' order

A lookup is a binary search over the mapped keys (``np.searchsorted``; vectorised for several
keys, scalar for one): it touches O(log n) pages per key. The manifest's ``precomputed`` entry
says where the table lives and what it holds (``serving.manifest.TableInfo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.errors import BadRequest, PredictorError
from serving.filesystems import StoreError
from serving.manifest import Manifest
from serving.tensors import Signature

KEYS_FILE = "keys.npy"
MISSING = -1


class TableError(StoreError):
    """A table that cannot be written or served; the message names the file and the fix."""


class KeysNotFound(PredictorError):
    """Keys the table does not hold, in a request that gave no tensors to fall back on."""

    status = 404

    def __init__(self, missing: list[str], model: str, version: int) -> None:
        shown = ", ".join(repr(k) for k in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        super().__init__(
            f"{len(missing)} key(s) not in the precomputed table of {model} version {version}: "
            f"{shown}{more}; send the tensors too (aligned with 'keys') to have the model "
            "predict them"
        )
        self.missing = missing


def output_file(index: int) -> str:
    return f"output-{index}.npy"


def encode_keys(keys: Sequence[str] | npt.NDArray[Any], *, where: str) -> npt.NDArray[np.bytes_]:
    """Keys as UTF-8 bytes (numpy ``S``), checked: non-empty strings without NUL characters
    (numpy's fixed-width bytes drop trailing NULs, so such keys could not be told apart)."""
    encoded = []
    for number, key in enumerate(keys):
        if not isinstance(key, str | np.str_) or not key:
            raise TableError(f"{where}: key {number} ({key!r}) must be a non-empty string")
        if "\0" in key:
            raise TableError(f"{where}: key {number} ({key!r}) contains a NUL character")
        encoded.append(str(key).encode())
    return np.array(encoded, dtype=np.bytes_)


def order_keys(
    keys: Sequence[str] | npt.NDArray[Any], *, where: str = "keys"
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bytes_]]:
    """The order that sorts the keys bytewise, and the sorted encoded keys. Refuses empty sets
    and duplicates (a key must name exactly one answer)."""
    encoded = encode_keys(keys, where=where)
    if len(encoded) == 0:
        raise TableError(f"{where}: no keys")
    order = np.argsort(encoded, kind="stable")
    ordered = encoded[order]
    duplicate = np.flatnonzero(ordered[1:] == ordered[:-1])
    if len(duplicate):
        repeated = sorted({ordered[i].decode() for i in duplicate[:10]})
        raise TableError(
            f"{where}: {len(duplicate)} duplicate key(s), e.g. {', '.join(map(repr, repeated))}; "
            "each example needs its own key"
        )
    return order, ordered


def write_table(
    folder: Path,
    keys: Sequence[str] | npt.NDArray[Any],
    outputs: Sequence[npt.NDArray[Any]],
    *,
    where: str = "keys",
) -> int:
    """Write a table into ``folder`` (rows sorted by key); returns the number of rows.

    ``outputs`` are the signature's outputs in order, each with one row per key.
    """
    order, ordered = order_keys(keys, where=where)
    for index, output in enumerate(outputs):
        if len(output) != len(ordered):
            raise TableError(
                f"output {index} has {len(output)} rows for {len(ordered)} keys: they must match"
            )
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / KEYS_FILE, ordered, allow_pickle=False)
    for index, output in enumerate(outputs):
        rows = np.ascontiguousarray(output[order])
        np.save(folder / output_file(index), rows, allow_pickle=False)
    return len(ordered)


@dataclass(frozen=True)
class Lookup:
    """Where each asked key's row is (``MISSING`` for keys the table lacks)."""

    rows: npt.NDArray[np.intp]
    missing: npt.NDArray[np.intp]  # positions in the request of keys not found

    @property
    def hits(self) -> int:
        return len(self.rows) - len(self.missing)


class PrecomputedTable:
    """An open, memory-mapped table: lookups by key, outputs by row."""

    def __init__(self, keys: npt.NDArray[np.bytes_], outputs: dict[str, npt.NDArray[Any]]) -> None:
        self.keys = keys
        self.outputs = outputs
        self._width = keys.dtype.itemsize
        self._count = len(keys)

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + sum(o.nbytes for o in self.outputs.values()))

    @classmethod
    def open(
        cls, folder: Path, signature: Signature, *, where: str = "precomputed"
    ) -> PrecomputedTable:
        """Map a table's files and check them against the signature (not their checksums: the
        store verified those when it fetched the version)."""
        keys = _map(folder / KEYS_FILE, where)
        if keys.dtype.kind != "S" or keys.ndim != 1:
            raise TableError(f"{where}/{KEYS_FILE}: must be a 1-D bytes array, got {keys.dtype}")
        outputs: dict[str, npt.NDArray[Any]] = {}
        for index, spec in enumerate(signature.outputs):
            name = f"{where}/{output_file(index)}"
            array = _map(folder / output_file(index), where)
            if array.dtype != spec.numpy_dtype or array.shape[1:] != spec.instance_shape:
                raise TableError(
                    f"{name}: holds {array.dtype} rows of shape {list(array.shape[1:])}, but the "
                    f"model's output {spec.name!r} is {spec.dtype} of shape "
                    f"{list(spec.instance_shape)}: the table was scored by another model"
                )
            if len(array) != len(keys):
                raise TableError(f"{name}: {len(array)} rows for {len(keys)} keys")
            outputs[spec.name] = array
        return cls(keys, outputs)

    def lookup(self, keys: Sequence[str]) -> Lookup:
        """Find every key; unknown ones (including keys longer than any in the table) miss."""
        if len(keys) == 1:
            return self._lookup_one(keys[0])
        width = self._width
        encoded = [k.encode() for k in keys]
        asked = np.array(encoded, dtype=self.keys.dtype)
        rows = np.searchsorted(self.keys, asked)
        np.minimum(rows, self._count - 1, out=rows)
        found = self.keys[rows] == asked
        for position, key in enumerate(encoded):
            # A key wider than the table's was truncated by the conversion above; one with a
            # trailing NUL lost it: neither can be in the table.
            if len(key) > width or key.endswith(b"\0"):
                found[position] = False
        if found.all():
            return Lookup(rows, _NONE)
        missing = np.flatnonzero(~found)
        rows[missing] = MISSING
        return Lookup(rows, missing)

    def _lookup_one(self, key: str) -> Lookup:
        # The common request names one key: a scalar binary search and a bytes comparison
        # cost a third of the array round trip.
        encoded = key.encode()
        row = min(int(self.keys.searchsorted(encoded)), self._count - 1)
        if len(encoded) <= self._width and self.keys[row] == encoded:
            return Lookup(np.array([row], dtype=np.intp), _NONE)
        return Lookup(np.array([MISSING], dtype=np.intp), _FIRST)

    def rows(self, rows: npt.NDArray[np.intp]) -> dict[str, npt.NDArray[Any]]:
        """The outputs of the given rows (a plain-array view for one row, else a copy)."""
        if len(rows) == 1:
            row = int(rows[0])
            return {name: np.asarray(array[row : row + 1]) for name, array in self.outputs.items()}
        return {name: array[rows] for name, array in self.outputs.items()}


_NONE: npt.NDArray[np.intp] = np.empty(0, dtype=np.intp)
_FIRST: npt.NDArray[np.intp] = np.zeros(1, dtype=np.intp)


def _map(path: Path, where: str) -> npt.NDArray[Any]:
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise TableError(f"{where}/{path.name}: missing from the table") from None
    except (OSError, ValueError) as exc:
        raise TableError(f"{where}/{path.name}: not a readable .npy file ({exc})") from None
    return array


def open_for(version_folder: Path, manifest: Manifest) -> PrecomputedTable | None:
    """The version's table, if its manifest names one."""
    info = manifest.precomputed  # its path was checked when the manifest was parsed
    if info is None:
        return None
    # Only files the manifest lists were fetched and checked against their sha256: a table
    # naming any other file is refused before it is mapped.
    needed = [KEYS_FILE, *(output_file(i) for i in range(len(manifest.signature.outputs)))]
    unlisted = [name for name in needed if f"{info.path}/{name}" not in manifest.files]
    if unlisted:
        raise TableError(
            f"{info.path}/{unlisted[0]}: the precomputed table's file is not listed in the "
            "manifest (no sha256 to check it against), so the table is refused"
        )
    table = PrecomputedTable.open(version_folder / info.path, manifest.signature, where=info.path)
    if len(table) != info.rows:
        raise TableError(
            f"{info.path}: {len(table)} rows, but the manifest says {info.rows}: the table "
            "does not belong to this manifest"
        )
    return table


# -- requests that name keys --------------------------------------------------------------------
KEY_INPUT = "key"  # the V2 input (datatype BYTES) that carries keys
_V1_TENSORS = ("instances", "inputs", "signature_name")


@dataclass(frozen=True)
class KeyRequest:
    """Keys asked for, and the request with only its tensors (None when it sent none)."""

    keys: list[str]
    tensors: dict[str, Any] | None


def v1_key_request(body: dict[str, Any]) -> tuple[KeyRequest, bool]:
    """A V1 ``{"keys": [...]}`` body (optionally with ``instances`` or ``inputs`` aligned with the
    keys, for fallback), and whether to answer in the row format (``predictions``)."""
    keys = _keys(body["keys"], "keys")
    tensors = {k: body[k] for k in _V1_TENSORS if k in body}
    has_tensors = "instances" in tensors or "inputs" in tensors
    return KeyRequest(keys, tensors if has_tensors else None), "inputs" not in body


def v2_key_position(body: Any) -> int | None:
    """Where a V2 body's ``key`` input is, if it has one (the cheap check every request pays)."""
    if type(body) is dict:
        inputs = body.get("inputs")
        if type(inputs) is list:
            for position, tensor in enumerate(inputs):
                if type(tensor) is dict and tensor.get("name") == KEY_INPUT:
                    return position
    return None


def v2_key_request(body: dict[str, Any], position: int) -> KeyRequest:
    """The keys of a V2 body's ``key`` input; the other inputs, if any, are the tensors."""
    tensor = body["inputs"][position]
    where = f"inputs[{position}] ({KEY_INPUT})"
    if tensor.get("datatype") != "BYTES":
        raise BadRequest(f"{where}: datatype must be 'BYTES' (keys are strings)")
    data, shape = tensor.get("data"), tensor.get("shape")
    if isinstance(data, list) and data and all(isinstance(d, list) for d in data):
        data = [item for row in data for item in row]
    keys = _keys(data, f"{where}.data")
    if shape not in ([len(keys)], [len(keys), 1]):
        raise BadRequest(f"{where}: shape must be [{len(keys)}] for {len(keys)} keys, got {shape}")
    others = [t for i, t in enumerate(body["inputs"]) if i != position]
    return KeyRequest(keys, {**body, "inputs": others} if others else None)


def _keys(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value:
        raise BadRequest(f"'{where}' must be a non-empty list of key strings")
    for number, key in enumerate(value):
        if not isinstance(key, str):
            raise BadRequest(f"'{where}'[{number}]: keys are strings, got {key!r}")
    return value


def merge(
    table: PrecomputedTable,
    found: Lookup,
    predicted: dict[str, npt.NDArray[Any]],
) -> dict[str, npt.NDArray[Any]]:
    """The table's rows for the keys it holds and the model's for the ones it missed, in the
    request's order."""
    hit = found.rows != MISSING
    merged: dict[str, npt.NDArray[Any]] = {}
    for name, array in table.outputs.items():
        rows = np.empty((len(found.rows), *array.shape[1:]), dtype=array.dtype)
        rows[hit] = array[found.rows[hit]]
        rows[found.missing] = predicted[name]
        merged[name] = rows
    return merged
