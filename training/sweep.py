"""Hyper-parameter sweeps: expand a grid into trial specs; rank a sweep's finished trials.

    python -m training.sweep --grid learning_rate=0.001,0.01 --grid width=16,32 [--random N]
    python -m training.sweep summarize --store URI --model NAME [--sweep ID] [--json]

Expansion prints one JSON trial spec per line (``sweep``, ``trial``, the hyper-parameters, and
the ``argv`` to append to ``python -m training``); the console turns each into a Job. Every
trial publishes its own version, whose manifest names its sweep and trial; ``summarize`` ranks
them by validation accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

from serving.filesystems import StoreError
from serving.store import ModelStore
from training.params import FLAG_KEYS, parse_grid


def expand(
    grid: Sequence[tuple[str, list[Any]]],
    *,
    sample: int | None = None,
    seed: int = 0,
    sweep: str | None = None,
) -> list[dict[str, Any]]:
    """Every combination of the grid (or ``sample`` of them, drawn without replacement)."""
    keys = [key for key, _ in grid]
    combinations = [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(v for _, v in grid))
    ]
    if sample is not None and sample < len(combinations):
        combinations = random.Random(seed).sample(combinations, sample)
    sweep = sweep or time.strftime("sweep-%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
    return [_trial(sweep, number, choice) for number, choice in enumerate(combinations)]


def _trial(sweep: str, number: int, choice: dict[str, Any]) -> dict[str, Any]:
    argv = ["--sweep", sweep, "--trial", str(number)]
    params = {}
    for key, value in choice.items():
        if key in FLAG_KEYS:
            argv += [FLAG_KEYS[key], str(value)]
        else:
            params[key] = value
            argv += ["--param", f"{key}={value}"]
    return {"sweep": sweep, "trial": number, **choice, "params": params, "argv": argv}


def summarize(store: ModelStore, model: str, sweep: str | None = None) -> list[dict[str, Any]]:
    """The trials of a sweep (the newest sweep if none is named), best validation accuracy first."""
    trials = []
    for version in store.versions(model):
        manifest = store.manifest(model, version)
        training = manifest.training
        if "sweep" not in training:
            continue
        trials.append(
            {
                "sweep": training["sweep"],
                "trial": training.get("trial"),
                "version": version,
                "accuracy": manifest.metrics.get("accuracy"),
                "int8_accuracy": manifest.metrics.get("int8_accuracy"),
                "learning_rate": training.get("learning_rate"),
                "params": training.get("params", {}),
                "run_id": training.get("run_id"),
            }
        )
    if not trials:
        return []
    chosen = sweep or max(trials, key=lambda t: t["version"])["sweep"]
    ranked = [t for t in trials if t["sweep"] == chosen]
    ranked.sort(key=lambda t: (-(t["accuracy"] or 0.0), t["version"]))
    for rank, trial in enumerate(ranked, 1):
        trial["rank"] = rank
    return ranked


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["summarize"]:
        return _summarize_command(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m training.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--grid",
        type=parse_grid,
        action="append",
        required=True,
        help="key=v1,v2,... (learning_rate, batch_size, epochs, width, depth)",
    )
    parser.add_argument(
        "--random",
        type=int,
        default=None,
        metavar="N",
        help="sample N combinations of the grid instead of all",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for --random")
    parser.add_argument("--sweep", default=None, help="sweep id (default: a new one)")
    args = parser.parse_args(argv)
    for trial in expand(args.grid, sample=args.random, seed=args.seed, sweep=args.sweep):
        print(json.dumps(trial))
    return 0


def _summarize_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sweep summarize")
    parser.add_argument("--store", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--sweep", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        ranked = summarize(ModelStore(args.store), args.model, args.sweep)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(ranked, indent=2))
        return 0
    if not ranked:
        print(f"no sweep trials of {args.model!r} in {args.store}")
        return 0
    print(f"sweep {ranked[0]['sweep']}: {len(ranked)} trials, best first")
    print(f"{'rank':>4} {'trial':>5} {'version':>7} {'accuracy':>8} {'int8':>6}  params")
    for t in ranked:
        params = {"learning_rate": t["learning_rate"], **t["params"]}
        shown = " ".join(f"{k}={v}" for k, v in params.items())
        print(
            f"{t['rank']:>4} {t['trial']:>5} {t['version']:>7} {t['accuracy'] or 0:>8.4f} "
            f"{t['int8_accuracy'] or 0:>6.4f}  {shown}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
