"""The command line: argument parsing and printing only; the argparse namespace never leaves it.

The entry point is ``console.cli.main:main``; nothing is imported here, so that importing the
package for it costs nothing.
"""
