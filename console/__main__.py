"""``fleetdeck``: the console's command line. The deck itself arrives with the console issues;
until then the command answers ``--version`` and says what exists."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from console import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fleetdeck",
        description="The operations deck for fleets of deep-learning model deployments.",
    )
    parser.add_argument("--version", action="version", version=f"fleetdeck {__version__}")
    parser.parse_args(argv)
    print(
        f"fleetdeck {__version__}: the deck is not built yet; "
        "serve a model with `fleetdeck-predictor --model-uri STORE/MODEL`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
