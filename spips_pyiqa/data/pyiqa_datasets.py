"""pyiqa's own options for its full-reference MOS data sets, with their paths under a data root.

pyiqa's ``default_dataset_configs.yml`` (read through ``pyiqa.get_dataset_info``) describes LIVE,
CSIQ, TID2008/2013, KADID-10k, PIPAL, ... as ``GeneralFRDataset`` entries whose paths all start
with ``./datasets/`` (``dataroot_target``, ``dataroot_ref``, ``meta_info_file``). Like
``pyiqa.load_dataset``, :func:`fr_dataset_options` replaces that first component by ``data_root``;
unlike it, nothing is downloaded: :func:`missing_paths` says what is absent, so a caller can report
it and skip the data set.
"""

import copy
from pathlib import Path

__all__ = ['PATH_KEYS', 'fr_dataset_names', 'fr_dataset_options', 'missing_paths', 'score_is_badness']

#: Option keys holding a path that starts with pyiqa's ``./datasets`` folder.
PATH_KEYS = ('dataroot_target', 'dataroot_ref', 'meta_info_file', 'split_file')


def _configs() -> dict:
    from pyiqa import get_dataset_info

    return get_dataset_info()


def fr_dataset_names() -> list[str]:
    """Names of pyiqa's ``GeneralFRDataset`` entries (``live``, ``csiq``, ``kadid10k``, ...)."""
    return [name for name, opt in _configs().items() if opt.get('type') == 'GeneralFRDataset']


def fr_dataset_options(name: str, data_root: Path) -> dict:
    """pyiqa's options of full-reference data set ``name`` with ``./datasets`` replaced by ``data_root``.

    Raises:
        ValueError: ``name`` is not a ``GeneralFRDataset`` of pyiqa's config, or one of its paths
            does not start with ``datasets/`` (a changed pyiqa config: better refused than guessed).
    """
    names = fr_dataset_names()
    if name not in names:
        raise ValueError(f'{name!r} is not a full-reference data set of pyiqa (one of: {", ".join(names)})')
    options = copy.deepcopy(_configs()[name])
    for key in PATH_KEYS:
        if key not in options:
            continue
        parts = Path(options[key]).parts  # './datasets/x' -> ('datasets', 'x')
        if not parts or parts[0] != 'datasets':
            raise ValueError(f'pyiqa config of {name!r}: {key} {options[key]!r} does not start with ./datasets')
        options[key] = str(Path(data_root).joinpath(*parts[1:]))
    return options


def missing_paths(options: dict) -> list[str]:
    """The folders and files of ``options`` (from :func:`fr_dataset_options`) that do not exist."""
    wanted = [(key, Path(options[key])) for key in PATH_KEYS if key in options]
    return [str(path) for key, path in wanted if not (path.is_dir() if key.startswith('dataroot') else path.is_file())]


def score_is_badness(options: dict) -> bool:
    """Whether the labels pyiqa yields for ``options`` rise as quality falls (DMOS-like).

    ``lower_better`` of the config, unless ``mos_normalize`` is on: pyiqa then maps every label to
    [0, 1], higher better.
    """
    if 'lower_better' not in options:
        raise ValueError(f'data set {options.get("name")!r} has no lower_better: the score direction is unknown')
    return bool(options['lower_better']) and not options.get('mos_normalize', False)
