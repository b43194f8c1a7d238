"""What a training or scoring job's log says about its progress: the JSON event lines of
``training.logs``.

A training pod writes one human line and one JSON line per event; ``{"event": "epoch", ...}``
carries the epoch's metrics and ``{"event": "exported", ...}`` the model version it published.
A scoring pod (``training.score``) reports ``start`` (the total), ``progress`` (done/total and
examples/s) and ``published`` (the table's rows) instead.
Other lines (the human ones, a framework's warnings, a merged stream's ``[pod]`` prefix) are
skipped. Pure: the Training screen reads the log in a worker and hands the lines here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from console.views.log_buffer import split_pod_prefix

# The metrics a row and a plot show, in this order; others stay in ``Epoch.metrics``.
SHOWN_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
ROW_METRICS = ("loss", "accuracy", "val_accuracy")  # a table cell has room for three
_NOT_METRICS = frozenset(("event", "epoch", "epochs", "examples_per_s", "seconds"))


@dataclass(frozen=True)
class Epoch:
    number: int
    of: int
    metrics: Mapping[str, float]
    seconds: float | None = None


@dataclass(frozen=True)
class Exported:
    model: str
    version: int
    uri: str = ""


@dataclass(frozen=True)
class Scored:
    """How far a scoring job got: examples scored of the input's total, at what rate."""

    done: int
    total: int
    examples_per_s: float | None = None


@dataclass(frozen=True)
class Published:
    """The precomputed table a scoring job published into a model version."""

    model: str
    version: int
    rows: int


@dataclass(frozen=True)
class JobProgress:
    epochs: tuple[Epoch, ...] = ()
    exported: Exported | None = None
    interrupted: str = ""  # the signal that stopped it, when one did
    device: str = ""
    scored: Scored | None = None  # scoring jobs only
    published: Published | None = None  # scoring jobs only
    failed: str = ""  # a scoring job's last word when it gave up

    @property
    def last(self) -> Epoch | None:
        return self.epochs[-1] if self.epochs else None

    def series(self, metric: str) -> list[float]:
        """``metric`` per epoch, for a plot (epochs without it are left out)."""
        return [e.metrics[metric] for e in self.epochs if metric in e.metrics]


@dataclass
class _Reading:
    epochs: dict[int, Epoch] = field(default_factory=dict)
    exported: Exported | None = None
    interrupted: str = ""
    device: str = ""
    scored: Scored | None = None
    published: Published | None = None
    failed: str = ""


def parse_progress(lines: Iterable[str]) -> JobProgress:
    """The epochs (the last report of each number wins: a retried pod starts over), the export
    and the interruption a training log reports; for a scoring log, the last progress and the
    published table."""
    reading = _Reading()
    for raw in lines:
        _, line = split_pod_prefix(raw)
        start = line.find('{"event"')
        if start < 0:
            continue
        try:
            event = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(event, dict):
            _read_event(event, reading)
    return JobProgress(
        tuple(reading.epochs[n] for n in sorted(reading.epochs)),
        reading.exported,
        reading.interrupted,
        reading.device,
        reading.scored,
        reading.published,
        reading.failed,
    )


def _read_event(event: dict[str, object], reading: _Reading) -> None:
    kind = event.get("event")
    if kind == "epoch":
        number, of = event.get("epoch"), event.get("epochs")
        if not isinstance(number, int) or not isinstance(of, int):
            return
        metrics = {
            key: float(value)
            for key, value in event.items()
            if key not in _NOT_METRICS and isinstance(value, int | float)
        }
        seconds = event.get("seconds")
        reading.epochs[number] = Epoch(
            number, of, metrics, float(seconds) if isinstance(seconds, int | float) else None
        )
    elif kind == "exported":
        model, version = event.get("model"), event.get("version")
        if isinstance(model, str) and isinstance(version, int):
            reading.exported = Exported(model, version, str(event.get("uri", "")))
    elif kind == "interrupted":
        reading.interrupted = str(event.get("signal", "a signal"))
    elif kind == "start":
        reading.device = str(event.get("device", ""))
        total = event.get("total")
        if isinstance(total, int):  # a scoring job: nothing scored yet (a retry starts over)
            reading.scored = Scored(0, total)
    elif kind == "progress":
        done, total, rate = event.get("done"), event.get("total"), event.get("examples_per_s")
        if isinstance(done, int) and isinstance(total, int):
            reading.scored = Scored(
                done, total, float(rate) if isinstance(rate, int | float) else None
            )
    elif kind == "published":
        model, version, rows = event.get("model"), event.get("version"), event.get("rows")
        if isinstance(model, str) and isinstance(version, int) and isinstance(rows, int):
            reading.published = Published(model, version, rows)
    elif kind == "failed":
        reading.failed = str(event.get("error", "failed"))


def format_metrics(epoch: Epoch | None, names: tuple[str, ...] = SHOWN_METRICS) -> str:
    """``"3/5 loss 0.412 acc 0.871 val_acc 0.850"``, or "-" before the first epoch."""
    if epoch is None:
        return "-"
    short = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    values = epoch.metrics
    shown = [f"{short[name]} {values[name]:.3f}" for name in names if name in values]
    return " ".join([f"{epoch.number}/{epoch.of}", *shown])


def format_scored(progress: JobProgress | None) -> str:
    """``"1,024/1,797 12,345 ex/s"``, ``"1,797/1,797 published"``, or "-" before the start."""
    scored = progress.scored if progress else None
    if scored is None:
        return "-"
    counts = f"{scored.done:,}/{scored.total:,}"
    if progress is not None and progress.published is not None:
        return f"{counts} published"
    if scored.examples_per_s is None:
        return counts
    return f"{counts} {scored.examples_per_s:,.0f} ex/s"
