"""``python -m console.local``: run the local agent in the foreground (the console starts it in
the background on demand, as ``python -P -m console.local``; ``fleetdeck agent start|stop|status``
manage it by hand)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from console.autoscaling import SYNC_SECONDS
from console.local.agent import Agent, AgentError, AgentSettings
from console.local.fleet import FleetSettings
from console.local.paths import AgentPaths

SYNC_ENVIRONMENT = "FLEETDECK_AUTOSCALE_SYNC_SECONDS"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m console.local", description=__doc__)
    parser.add_argument("--profile", required=True, help="the profile this agent serves")
    parser.add_argument("--state-dir", type=Path, required=True, help="lock, socket, state, logs")
    parser.add_argument("--store", required=True, help="model store root")
    parser.add_argument("--gateway-port", type=int, required=True, help="0: any free port")
    parser.add_argument("--replicas", type=int, default=1, help="default replicas per deploy")
    parser.add_argument("--drain-seconds", type=float, default=1.0)
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--batch-timeout-ms", type=float, default=0.0)
    parser.add_argument("--progress-deadline", type=float, default=300.0, help="seconds")
    parser.add_argument("--training-parallel", type=int, default=2, help="jobs run at once")
    parser.add_argument(
        "--autoscale-sync-seconds",
        type=_positive_seconds,
        default=os.environ.get(SYNC_ENVIRONMENT, str(SYNC_SECONDS)),
        help=f"how often the autoscalers are evaluated (default: ${SYNC_ENVIRONMENT}, "
        f"else {SYNC_SECONDS:g}, the HPA's sync period)",
    )
    return parser


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, above 0 and up to 3600")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Everything the agent and its children write (state, logs, model cache) is the user's alone.
    os.umask(0o077)
    paths = AgentPaths(args.state_dir.expanduser().absolute())
    paths.make_private()
    os.chdir(paths.root)  # never the folder it was started from: children inherit this one
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    settings = AgentSettings(
        profile=args.profile,
        paths=paths,
        gateway_port=args.gateway_port,
        fleet=FleetSettings(
            store=args.store,
            drain_seconds=args.drain_seconds,
            max_batch_size=args.max_batch_size,
            batch_timeout_ms=args.batch_timeout_ms,
            progress_deadline=args.progress_deadline,
            default_replicas=args.replicas,
        ),
        training_parallel=args.training_parallel,
        autoscale_sync_seconds=args.autoscale_sync_seconds,
    )

    async def run() -> None:
        await Agent(settings).run()

    try:
        try:
            import uvloop
        except ImportError:  # optional, as for the predictor: the stdlib loop also works
            asyncio.run(run())
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(run())
    except AgentError as exc:
        print(f"fleetdeck agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
