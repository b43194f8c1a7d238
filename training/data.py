"""Training data sets: a folder (local, a PersistentVolume mount, or HDFS) of shards + tags.

Format::

    <dataset>/
        tags.txt            one tag name per line; line i names label i
        shard-00000.npz     numpy arrays: images float32 (n, H, W, C) scaled to 0..1,
        shard-00001.npz     labels int (n,) in 0..len(tags)-1, keys str (n,) optional
        ...

Scoring (``python -m training.score``) reads the same format as *keyed inputs*: every shard must
carry ``keys`` (unique strings naming each example, e.g. a photo id), while labels and the tags
file are optional there.

``python -m training.data sample DEST`` writes a real sample: scikit-learn's 1,797 handwritten
8×8 digits (shipped inside the package), ten tags, four shards, to a folder or an hdfs:// root.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.filesystems import StoreError, join, open_root

TAGS_FILE = "tags.txt"
SHARD_SUFFIX = ".npz"


class DataError(Exception):
    """A data set that cannot be trained on; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Dataset:
    uri: str
    tags: tuple[str, ...]
    images: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]
    keys: npt.NDArray[np.str_]
    shards: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        shape = self.images.shape[1:]
        return (int(shape[0]), int(shape[1]), int(shape[2]))

    def split(self, val_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
        """A shuffled train/validation split, the same for the same seed."""
        order = np.random.default_rng(seed).permutation(len(self.labels))
        cut = len(order) - max(1, round(len(order) * val_fraction))
        return self._subset(order[:cut]), self._subset(order[cut:])

    def _subset(self, index: npt.NDArray[Any]) -> Dataset:
        return Dataset(
            self.uri,
            self.tags,
            self.images[index],
            self.labels[index],
            self.keys[index],
            self.shards,
        )


def load_dataset(uri: str) -> Dataset:
    """Read and check a data set; fails fast with the file that is wrong."""
    try:
        fs, root = open_root(uri)
        names = fs.list_dir(root)
    except StoreError as exc:
        raise DataError(f"cannot read data set {uri}: {exc}") from None
    if TAGS_FILE not in names:
        raise DataError(
            f"{fs.url(join(root, TAGS_FILE))}: missing; a data set needs a tags file "
            "with one tag name per line"
        )
    tags = tuple(
        t.strip() for t in _read(fs, join(root, TAGS_FILE)).decode().splitlines() if t.strip()
    )
    if not tags:
        raise DataError(f"{fs.url(join(root, TAGS_FILE))}: no tags in it")
    shard_names = sorted(n for n in names if n.endswith(SHARD_SUFFIX))
    if not shard_names:
        raise DataError(f"{uri}: no shards (*{SHARD_SUFFIX}) in the data set")
    images: list[Any] = []
    labels: list[Any] = []
    keys: list[Any] = []
    for name in shard_names:
        path = fs.url(join(root, name))
        shard = _read_shard(_read(fs, join(root, name)), path, len(tags))
        if images and shard[0].shape[1:] != images[0].shape[1:]:
            raise DataError(
                f"{path}: images of shape {shard[0].shape[1:]}, but earlier shards "
                f"have {images[0].shape[1:]}"
            )
        images.append(shard[0])
        labels.append(shard[1])
        keys.append(
            shard[2]
            if shard[2] is not None
            else np.array([f"{name}:{i}" for i in range(len(shard[1]))])
        )
    return Dataset(
        uri,
        tags,
        np.concatenate(images),
        np.concatenate(labels),
        np.concatenate(keys),
        len(shard_names),
    )


@dataclass(frozen=True)
class KeyedInputs:
    """Examples to score, each named by its key."""

    uri: str
    keys: npt.NDArray[np.str_]
    images: npt.NDArray[np.float32]
    shards: int


def load_keyed_inputs(uri: str) -> KeyedInputs:
    """Read the shards of a data set for scoring: images and keys (labels are not needed)."""
    try:
        fs, root = open_root(uri)
        names = fs.list_dir(root)
    except StoreError as exc:
        raise DataError(f"cannot read inputs {uri}: {exc}") from None
    shard_names = sorted(n for n in names if n.endswith(SHARD_SUFFIX))
    if not shard_names:
        raise DataError(f"{uri}: no shards (*{SHARD_SUFFIX}) to score")
    images: list[Any] = []
    keys: list[Any] = []
    for name in shard_names:
        path = fs.url(join(root, name))
        try:
            with np.load(io.BytesIO(_read(fs, join(root, name))), allow_pickle=False) as shard:
                arrays = {n: shard[n] for n in shard.files if n in ("images", "keys")}
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable .npz shard ({exc})") from None
        if "keys" not in arrays:
            raise DataError(
                f"{path}: no 'keys' array; scoring needs a key per example "
                "(a str array next to 'images', as `python -m training.data sample` writes)"
            )
        if "images" not in arrays or arrays["images"].ndim != 4:
            raise DataError(f"{path}: needs 'images' of shape (n, height, width, channels)")
        if arrays["keys"].shape != (len(arrays["images"]),) or arrays["keys"].dtype.kind != "U":
            raise DataError(
                f"{path}: keys must be strings, one per image ({len(arrays['images'])},), "
                f"got {arrays['keys'].dtype} {arrays['keys'].shape}"
            )
        if images and arrays["images"].shape[1:] != images[0].shape[1:]:
            raise DataError(
                f"{path}: images of shape {arrays['images'].shape[1:]}, but earlier shards "
                f"have {images[0].shape[1:]}"
            )
        images.append(arrays["images"].astype(np.float32, copy=False))
        keys.append(arrays["keys"])
    return KeyedInputs(uri, np.concatenate(keys), np.concatenate(images), len(shard_names))


def _read(fs: Any, path: str) -> bytes:
    try:
        data: bytes = fs.read_bytes(path)
        return data
    except StoreError as exc:
        raise DataError(f"cannot read {fs.url(path)}: {exc}") from None


def _read_shard(data: bytes, path: str, tag_count: int) -> tuple[Any, Any, Any]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as shard:
            arrays = {name: shard[name] for name in shard.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz shard ({exc})") from None
    for name in ("images", "labels"):
        if name not in arrays:
            raise DataError(f"{path}: no '{name}' array (found: {', '.join(arrays) or 'none'})")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 4:
        raise DataError(f"{path}: images must be (n, height, width, channels), got {images.shape}")
    if len(images) == 0:
        raise DataError(f"{path}: empty shard (no examples)")
    if labels.shape != (len(images),):
        raise DataError(
            f"{path}: labels must be ({len(images)},) to match images, got {labels.shape}"
        )
    if images.dtype.kind != "f":
        raise DataError(f"{path}: images must be floats scaled to 0..1, got {images.dtype}")
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= tag_count:
        raise DataError(
            f"{path}: labels must be integers in 0..{tag_count - 1} (tags.txt has {tag_count} tags)"
        )
    keys = arrays.get("keys")
    if keys is not None and keys.shape != labels.shape:
        raise DataError(f"{path}: keys must be ({len(images)},), got {keys.shape}")
    return images.astype(np.float32), labels.astype(np.int64), keys


def write_dataset(
    uri: str,
    tags: Sequence[str],
    images: npt.NDArray[Any],
    labels: npt.NDArray[Any],
    keys: npt.NDArray[Any],
    shards: int = 4,
) -> None:
    fs, root = open_root(uri)
    fs.makedirs(root)
    fs.write_bytes(join(root, TAGS_FILE), ("\n".join(tags) + "\n").encode())
    for number, index in enumerate(np.array_split(np.arange(len(labels)), shards)):
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            images=images[index].astype(np.float32),
            labels=labels[index].astype(np.int64),
            keys=keys[index],
        )
        fs.write_bytes(join(root, f"shard-{number:05d}{SHARD_SUFFIX}"), buffer.getvalue())


def write_sample(uri: str) -> int:
    """The digits sample data set; returns the number of examples written."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    keys = np.array([f"digit-{i:05d}" for i in range(len(images))])
    write_dataset(uri, [f"digit-{n}" for n in range(10)], images, digits.target, keys)
    return len(images)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    sample = commands.add_parser("sample", help="write the digits sample data set")
    sample.add_argument("dest", help="a folder, file:// or hdfs://namenode:port/path")
    check = commands.add_parser("check", help="read a data set and say what it holds")
    check.add_argument("uri")
    request = commands.add_parser("request", help="print a TF-Serving :predict body for examples")
    request.add_argument("uri")
    request.add_argument("--index", type=int, default=0, help="first example")
    request.add_argument("--count", type=int, default=1, help="how many examples")
    args = parser.parse_args(argv)
    try:
        if args.command == "sample":
            count = write_sample(args.dest)
            print(f"wrote {count} examples (10 tags, 4 shards) to {args.dest}")
        elif args.command == "request":
            data = load_dataset(args.uri)
            images = data.images[args.index : args.index + args.count]
            print(json.dumps({"instances": images.tolist()}))
        else:
            data = load_dataset(args.uri)
            print(
                f"{args.uri}: {len(data.labels)} examples of shape {data.image_shape}, "
                f"{len(data.tags)} tags, {data.shards} shards"
            )
    except (DataError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
