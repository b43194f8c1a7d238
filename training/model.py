"""The image-tagging model: a small CNN that gives a photo a score per tag."""

from __future__ import annotations

from typing import Any

INPUT_NAME = "image"
OUTPUT_NAME = "scores"


def build_model(
    image_shape: tuple[int, int, int], tags: int, *, width: int = 16, depth: int = 2
) -> Any:
    """A CNN sized for CPU training in seconds on 8×8 images; ``width``/``depth`` scale it
    (``training.params.MODEL_PARAMS`` names them for --param, with these defaults)."""
    import keras

    inputs = keras.Input(image_shape, name=INPUT_NAME)
    x = inputs
    for level in range(depth):
        x = keras.layers.Conv2D(width * (2**level), 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x) if depth > 2 else keras.layers.Flatten()(x)
    x = keras.layers.Dense(max(32, width * 2), activation="relu")(x)
    # float32 scores even under mixed precision: softmax in float16 loses small tag scores.
    outputs = keras.layers.Dense(tags, activation="softmax", name=OUTPUT_NAME, dtype="float32")(x)
    return keras.Model(inputs, outputs, name="image_tagger")
