"""``python -m spips_pyiqa.train -opt options/train_spips.yml``: pyiqa's training loop, rooted here.

pyiqa's own ``python -m pyiqa.train`` puts ``experiments/`` inside site-packages (its root is the
package's parent) while its auto-resume looks in ``./experiments``; this launcher runs the same
``train_pipeline`` with the current directory as root, like ``python pyiqa/train.py`` from a pyiqa
source checkout. All options (``-opt``, ``--auto_resume``, ``--force_yml``...) are pyiqa's.
"""

import os

from pyiqa.train import train_pipeline

from spips_pyiqa.registration import register, register_metric_functions, register_training


def main() -> None:
    register()  # also works from a source checkout, without the entry points installed
    register_training()
    register_metric_functions()
    train_pipeline(os.getcwd())


if __name__ == '__main__':
    main()
