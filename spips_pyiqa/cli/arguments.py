"""Argument parsing shared by the commands that return exit codes instead of raising ``SystemExit``."""

import argparse
from typing import Sequence, Union


def parse_or_exit_code(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Union[argparse.Namespace, int]:
    """``parser.parse_args(argv)``, or the exit code argparse chose (0 after ``--help``, 2 for bad
    options; its message is already printed) so that ``cli(argv)`` can return it."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
