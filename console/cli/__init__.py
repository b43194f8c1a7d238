"""The command line: argument parsing and printing only; the argparse namespace never leaves it."""

from console.cli.main import main

__all__ = ["main"]
