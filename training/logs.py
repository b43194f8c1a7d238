"""Training logs that stream well: unbuffered, one human line and one JSON line per event.

The JSON lines (``{"event": "epoch", ...}``) are what the console parses into its training
view; the human lines are what a person tailing the pod reads. Both go to stdout, flushed at
once, so ``kubectl logs -f`` shows each epoch as it ends.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO


class TrainingLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def event(self, event: str, human: str, **fields: Any) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.stream.write(f"{stamp} {human}\n")
        self.stream.write(json.dumps({"event": event, **fields}, default=_plain) + "\n")
        self.stream.flush()

    def epoch(
        self,
        epoch: int,
        epochs: int,
        metrics: dict[str, float],
        examples_per_s: float,
        seconds: float,
    ) -> None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self.event(
            "epoch",
            f"epoch {epoch}/{epochs}  {shown}  {examples_per_s:,.0f} examples/s  {seconds:.1f} s",
            epoch=epoch,
            epochs=epochs,
            **metrics,
            examples_per_s=round(examples_per_s, 1),
            seconds=round(seconds, 3),
        )


def _plain(value: Any) -> Any:
    """numpy scalars and other numbers become plain JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    return str(value)
