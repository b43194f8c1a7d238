"""Train a tiny image-tagging model on scikit-learn's digits and publish it to a store.

``python -m training.quickstart --store DIR [--model NAME] [--epochs N]``: the shortest real
path from nothing to a servable model version, used by the README's main job and the tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from serving.store import ModelStore
from training.export import export_and_publish
from training.model import build_model

TAGS = tuple(f"digit-{n}" for n in range(10))


def digits() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """scikit-learn's 1,797 real 8×8 handwritten digits, scaled to 0..1, shape (n, 8, 8, 1)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[..., np.newaxis]
    return images, data.target.astype(np.int64)


def train_and_publish(store_uri: str, name: str, epochs: int, seed: int = 7) -> dict[str, Any]:
    import keras

    keras.utils.set_random_seed(seed)
    images, labels = digits()
    order = np.random.default_rng(seed).permutation(len(images))
    images, labels = images[order], labels[order]
    split = int(len(images) * 0.8)
    model = build_model(images.shape[1:], len(TAGS), width=8, depth=2)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(images[:split], labels[:split], epochs=epochs, batch_size=64, verbose=0)
    manifest = export_and_publish(
        model, ModelStore(store_uri), name, labels=TAGS,
        validation=(images[split:], labels[split:]),
        training={"data": "sklearn:digits", "epochs": epochs, "seed": seed},
    )
    return {"model": manifest.model, "version": manifest.version, "metrics": dict(manifest.metrics)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.quickstart", description=__doc__)
    parser.add_argument("--store", required=True, help="store root: a path, file:// or hdfs://")
    parser.add_argument("--model", default="digits", help="model name (default: digits)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--request-out", type=Path, default=None,
                        help="also write a sample TF-Serving :predict body (one real digit) here")
    args = parser.parse_args(argv)
    result = train_and_publish(args.store, args.model, args.epochs)
    if args.request_out is not None:
        image = digits()[0][0]
        args.request_out.parent.mkdir(parents=True, exist_ok=True)
        args.request_out.write_text(json.dumps({"instances": [image.tolist()]}))
    print(json.dumps({"event": "exported", **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
