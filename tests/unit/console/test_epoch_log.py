"""The Training screen's reading of a training log: the JSON lines that training.logs writes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from console.views.epoch_log import format_metrics, format_scored, parse_progress
from training import score
from training.logs import TrainingLog


def training_log_lines(epochs: int, *, exported: int | None = None) -> list[str]:
    out = io.StringIO()
    log = TrainingLog(out)
    log.event("start", "training digits on CPU", model="digits", device="CPU")
    for n in range(1, epochs + 1):
        metrics = {"loss": 1.0 / n, "accuracy": 0.5 + n / 20, "val_accuracy": 0.45 + n / 20}
        log.epoch(n, 5, metrics, examples_per_s=900.0, seconds=1.5)
    if exported is not None:
        log.event("exported", "published", model="digits", version=exported, uri="file:///s/d/3")
    return out.getvalue().splitlines()


def test_the_last_epoch_and_the_series_come_from_the_json_lines() -> None:
    progress = parse_progress(training_log_lines(3))
    assert [e.number for e in progress.epochs] == [1, 2, 3]
    assert progress.series("loss") == [1.0, 0.5, 1.0 / 3]
    assert progress.device == "CPU"
    assert format_metrics(progress.last) == "3/5 loss 0.333 acc 0.650 val_acc 0.600"
    assert progress.exported is None


def test_the_exported_version_is_what_a_finished_job_can_deploy() -> None:
    progress = parse_progress(training_log_lines(5, exported=3))
    assert progress.exported is not None
    assert (progress.exported.model, progress.exported.version) == ("digits", 3)


def test_merged_prefixes_human_lines_and_broken_json_are_skipped() -> None:
    lines = [f"[train-digits-abc-0-xyz] {line}" for line in training_log_lines(2)]
    lines += ["Traceback (most recent call last):", '{"event": "epoch", "epoch": ']
    assert len(parse_progress(lines).epochs) == 2


def test_before_the_first_epoch_there_is_nothing_to_show() -> None:
    assert format_metrics(parse_progress(["starting"]).last) == "-"


def test_a_scoring_job_that_fails_shows_why_and_no_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real ``python -m training.score`` refusing an empty store: its own log lines."""
    args = ["--model", "digits", "--version", "1", "--input", "missing", "--store", str(tmp_path)]
    assert score.main(args) == 1
    lines = [f"[score-digits-x1y2z-0] {line}" for line in capsys.readouterr().out.splitlines()]
    progress = parse_progress(lines)
    assert progress.failed == f"model 'digits' not found in store {tmp_path}"
    assert progress.scored is None
    assert format_scored(progress) == "-"
