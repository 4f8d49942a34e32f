"""What every command of ``python -m spips_pyiqa`` shares: its parser, plain-text help, exit codes.

Exit codes, one convention for all commands (README, "Command line"):

- ``0`` (:data:`SUCCESS`): done (also after ``--help``);
- ``2`` (:data:`USAGE_ERROR`): the command line itself is wrong: an unknown option, a missing or
  malformed argument, a name given on the command line that the command does not know. Nothing
  was done; argparse prints the usage and one ``error:`` line;
- ``1`` (:data:`FAILURE`): the command ran and failed: missing or unusable files, data, options
  file, weights, checkpoint or device. One ``error: ...`` line on stderr, no traceback.

Help is plain text: module docstrings are written for Sphinx, so :func:`plain_text` turns their
markup (double backticks, roles such as ``:func:`` or ``:mod:``, bold, literal-block ``::``) into
what a terminal shows.
"""

import argparse
import re
import sys
from collections.abc import Callable, Sequence

SUCCESS, FAILURE, USAGE_ERROR = 0, 1, 2
PROGRAM = 'python -m spips_pyiqa'

_ROLE = re.compile(r':[a-z]+:`(~?)([^`]+)`')
_LITERAL = re.compile(r'``([^`]+)``|`([^`]+)`')


def plain_text(text: str) -> str:
    """``text`` without reStructuredText markup: ``:func:`~a.b.c``` -> ``c``, ``:mod:`a.b``` -> ``a.b``,
    double and single backticks and ``**bold**`` dropped, a literal block's ``::`` -> ``:``."""
    text = _ROLE.sub(lambda m: m[2].split('.')[-1] if m[1] else m[2], text)
    text = _LITERAL.sub(lambda m: m[1] or m[2], text)
    text = text.replace('**', '')
    return re.sub(r'(\S)::$', r'\1:', text, flags=re.MULTILINE)


def command_parser(command: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``python -m spips_pyiqa COMMAND``: its description (a module docstring, say) and
    epilog as plain text, line breaks kept."""
    return argparse.ArgumentParser(
        prog=f'{PROGRAM} {command}', description=plain_text(description),
        epilog=None if epilog is None else plain_text(epilog), formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_or_exit_code(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit code argparse chose (0 after ``--help``, 2 for bad
    options; its message is already printed) so that ``cli(argv)`` can return it."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """What ``parser.error(message)`` prints (usage, then ``PROG: error: message``), returning
    :data:`USAGE_ERROR` instead of exiting: for a command line found wrong after parsing."""
    parser.print_usage(sys.stderr)
    print(f'{parser.prog}: error: {message}', file=sys.stderr)
    return USAGE_ERROR


def fail(error: BaseException | str) -> int:
    """Print ``error: <message>`` (its first line) on stderr and return :data:`FAILURE`."""
    message = str(error).strip().splitlines() or [type(error).__name__]
    print(f'error: {message[0]}', file=sys.stderr)
    return FAILURE


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    body: Callable[[argparse.Namespace], int | None],
    failures: tuple[type[BaseException], ...],
) -> int:
    """Parse ``argv`` and run ``body(args)``, mapping the outcome to the exit-code convention.

    ``body`` may return :func:`usage_error` (or call ``parser.error``) for a usage error found
    after parsing (e.g. two arguments that exclude each other): :data:`USAGE_ERROR`. An exception of ``failures`` is one
    ``error:`` line and :data:`FAILURE`; ``body``'s own return value (``None``: success) otherwise.
    """
    args = parse_or_exit_code(parser, argv)
    if isinstance(args, int):
        return args
    try:
        code = body(args)
    except SystemExit as exit_:  # parser.error() inside body
        return int(exit_.code or 0)
    except failures as error:
        return fail(error)
    return SUCCESS if code is None else code
