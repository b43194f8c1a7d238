"""Command line: ``python -m tests.infra.k8s up|down|status|build``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
