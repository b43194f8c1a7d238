"""``python -m serving`` / ``fleetdeck-predictor``: serve one model version over HTTP."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from serving.config import parse_args
from serving.server import serve


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(serve(config))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
