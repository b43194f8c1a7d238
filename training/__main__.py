"""``python -m training``: train the image-tagging model and publish it to the model store.

Every flag is also an environment variable for the Job (``--data`` is ``FLEETDECK_DATA``,
``--store`` is ``FLEETDECK_STORE``, ...). Exit status: 0 published, 1 failed (the last log line
says why), 2 bad usage, 143 stopped by SIGTERM with nothing published.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from serving.envflags import EnvDefaultParser, non_negative_float, positive_int
from training.fit import TrainingSpec, new_run_id, run_job, train
from training.params import parse_param


def _fraction(text: str) -> float:
    value = non_negative_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def build_parser() -> EnvDefaultParser:
    parser = EnvDefaultParser(
        prog="python -m training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_env_option
    add("--model", required=True, help="model name in the store")
    add("--data", required=True, help="data set: a folder, file:// or hdfs:// (see training.data)")
    add("--store", required=True, help="model store root: a folder, file:// or hdfs://")
    add("--epochs", type=positive_int, default=5, help="passes over the training split")
    add("--batch-size", type=positive_int, default=64, help="examples per step")
    add("--learning-rate", type=non_negative_float, default=0.003, help="Adam's learning rate")
    add(
        "--param",
        type=parse_param,
        action="append",
        default=[],
        help="model parameter key=value (width, depth); repeatable",
    )
    add("--val-split", type=_fraction, default=0.2, help="fraction held out for validation")
    add("--seed", type=int, default=7, help="random seed for the split and the weights")
    add("--run-id", default="", help="identifies this run in logs and the manifest")
    add("--no-int8", action="store_true", help="skip the int8 LiteRT export")
    add("--mixed-precision", action="store_true", help="float16 compute (for GPUs)")
    add("--sweep", default=None, help="the sweep this run is a trial of")
    add("--trial", type=int, default=None, help="the trial number within the sweep")
    return parser


def spec_from_args(argv: Sequence[str] | None = None) -> TrainingSpec:
    args = build_parser().parse_args(argv)
    params = dict(parse_param(p) if isinstance(p, str) else p for p in args.param)
    return TrainingSpec(
        model=args.model,
        data=args.data,
        store=args.store,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        params=params,
        val_split=args.val_split,
        seed=args.seed,
        run_id=args.run_id or new_run_id(),
        int8=not args.no_int8,
        mixed_precision=args.mixed_precision,
        sweep=args.sweep,
        trial=args.trial,
    )


def main(argv: Sequence[str] | None = None) -> int:
    spec = spec_from_args(argv)
    return run_job(lambda out, stop: train(spec, out, stop), spec.run_id)


if __name__ == "__main__":
    sys.exit(main())
