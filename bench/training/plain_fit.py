"""The baseline: a plain ``keras.Model.fit`` of the same model on the same data and split, with
nothing but a clock around each epoch. Prints one JSON line per epoch."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    data_uri, epochs, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import keras

    from training.data import load_dataset
    from training.model import build_model

    keras.utils.set_random_seed(7)
    train, val = load_dataset(data_uri).split(0.2, 7)
    model = build_model(train.image_shape, len(train.tags))
    model.compile(
        optimizer=keras.optimizers.Adam(0.003),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )

    class Clock(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds = time.perf_counter() - self.started
            print(
                json.dumps({"epoch": epoch + 1, "examples_per_s": len(train.labels) / seconds}),
                flush=True,
            )

    model.fit(
        train.images,
        train.labels,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(val.images, val.labels),
        verbose=0,
        callbacks=[Clock()],
    )


if __name__ == "__main__":
    main()
