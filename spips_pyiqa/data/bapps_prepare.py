"""pyiqa meta-info for BAPPS (``python -m spips_pyiqa prepare-bapps BAPPS_ROOT [--out DIR]``).

pyiqa's ``BAPPSDataset`` reads a meta-info CSV and a pickled split file that pyiqa builds with
``scripts/process_bapps.py``, a script its wheel does not install. This command writes the same two
files from the official BAPPS folder layout, checking the layout first:

* ``meta_info_BAPPSDataset.csv``: header ``ref_img_path,p0_img_path,p1_img_path,judge/same,split``;
  one row per 2AFC triplet (``ref, p0, p1, h, split``) then one per JND pair
  (``jnd, p0, p1, same, split``). Paths are relative to BAPPS_ROOT (pyiqa's ``dataroot_target``);
  ``h`` is the fraction of raters preferring ``p1``, ``same`` the fraction judging the pair
  identical; ``split`` is 0 for train, 1 for val. Rows are sorted by split, category, file name, as
  pyiqa's sorted globs order them.
* ``bapps_official.pkl``: ``{1: {'train': [row indices], 'val': [row indices], 'test': []}}``, used
  through the dataset options ``split_file`` + ``split_index: 1`` + ``phase``/``override_phase``.

Unlike pyiqa's script (which zips four independently sorted globs), every triplet is matched by file
name within its category, so a missing or extra file is an error instead of a silent misalignment.

Layout checked (Zhang et al. 2018, https://github.com/richzhang/PerceptualSimilarity)::

    BAPPS_ROOT/2afc/train/{traditional,cnn,mix}/{ref,p0,p1,judge}/   (optional: val-only download)
    BAPPS_ROOT/2afc/val/{traditional,cnn,superres,deblur,color,frameinterp}/{ref,p0,p1,judge}/
    BAPPS_ROOT/jnd/val/{traditional,cnn}/{p0,p1,same}/

Images are ``NNNNNN.png``, judgments ``NNNNNN.npy`` holding one number in [0, 1].

The default output folder is ``BAPPS_ROOT/meta_info`` (see :func:`default_output_dir`);
:func:`dataset_options` gives the pyiqa dataset options that read what this command wrote.

Reference: R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness
of Deep Features as a Perceptual Metric." CVPR 2018.
"""

import csv
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    'JND_CATEGORIES',
    'META_INFO_NAME',
    'SPLIT_FILE_NAME',
    'SPLIT_INDEX',
    'TRAIN_2AFC_CATEGORIES',
    'VAL_2AFC_CATEGORIES',
    'BappsLayoutError',
    'Row',
    'collect_rows',
    'dataset_options',
    'default_output_dir',
    'write_meta_info',
]

TRAIN_2AFC_CATEGORIES = ('traditional', 'cnn', 'mix')
VAL_2AFC_CATEGORIES = ('traditional', 'cnn', 'superres', 'deblur', 'color', 'frameinterp')
JND_CATEGORIES = ('traditional', 'cnn')

META_INFO_NAME = 'meta_info_BAPPSDataset.csv'
SPLIT_FILE_NAME = 'bapps_official.pkl'
SPLIT_INDEX = 1
CSV_HEADER = ('ref_img_path', 'p0_img_path', 'p1_img_path', 'judge/same', 'split')
JND_REF_MARKER = 'jnd'  # pyiqa's BAPPSDataset tells JND rows by this value in the ref column
SPLIT_CODES = {'train': 0, 'val': 1}

IMAGE_SUFFIX = '.png'
JUDGMENT_SUFFIX = '.npy'


class BappsLayoutError(ValueError):
    """The folder is not (a complete) BAPPS: the message is one line naming the offending path."""


@dataclass(frozen=True)
class Row:
    """One meta-info row: a 2AFC triplet (``ref`` is a path) or a JND pair (``ref == 'jnd'``)."""

    ref: str
    p0: str
    p1: str
    judgment: float
    split: str


@dataclass(frozen=True)
class _Task:
    """A BAPPS sub-tree: its folder, categories, image folders and judgment folder."""

    folder: str
    categories: tuple[str, ...]
    image_dirs: tuple[str, ...]
    judgment_dir: str
    required: bool


_TASKS = (
    _Task('2afc/train', TRAIN_2AFC_CATEGORIES, ('ref', 'p0', 'p1'), 'judge', required=False),
    _Task('2afc/val', VAL_2AFC_CATEGORIES, ('ref', 'p0', 'p1'), 'judge', required=True),
    _Task('jnd/val', JND_CATEGORIES, ('p0', 'p1'), 'same', required=True),
)


def default_output_dir(root: Path) -> Path:
    """Where ``prepare-bapps`` writes when ``--out`` is not given: ``BAPPS_ROOT/meta_info``."""
    return Path(root) / 'meta_info'


def _check_is_bapps(root: Path) -> None:
    """Raise unless ``root`` is a folder holding ``2afc/`` or ``jnd/`` (their insides come later)."""
    if not root.is_dir():
        raise BappsLayoutError(f'BAPPS root is not a folder: {root}')
    if not (root / '2afc').is_dir() and not (root / 'jnd').is_dir():
        raise BappsLayoutError(
            f'not a BAPPS folder (no 2afc/ or jnd/ inside): {root}; '
            'pass the folder that holds 2afc/ and jnd/ (PerceptualSimilarity/dataset)'
        )


def _stems(folder: Path, suffix: str) -> set[str]:
    """Names (without ``suffix``) of the ``suffix`` files in ``folder``; error if it is missing."""
    if not folder.is_dir():
        raise BappsLayoutError(f'missing BAPPS subfolder: {folder}')
    return {path.stem for path in folder.iterdir() if path.is_file() and path.suffix == suffix}


def _check_categories(task_dir: Path, task: _Task) -> None:
    """Raise if a category folder is missing or an unknown one is present in ``task_dir``."""
    present = {path.name for path in task_dir.iterdir() if path.is_dir()}
    missing = [name for name in task.categories if name not in present]
    if missing:
        raise BappsLayoutError(f'missing BAPPS subfolder: {task_dir / missing[0]}')
    unknown = sorted(present - set(task.categories))
    if unknown:
        expected = ', '.join(task.categories)
        unexpected = task_dir / unknown[0]
        raise BappsLayoutError(f'unexpected folder {unexpected} (BAPPS {task.folder}: {expected})')


def _matched_stems(category_dir: Path, task: _Task) -> list[str]:
    """Sorted file names present in every image and judgment folder of one category."""
    folders = {name: _stems(category_dir / name, IMAGE_SUFFIX) for name in task.image_dirs}
    folders[task.judgment_dir] = _stems(category_dir / task.judgment_dir, JUDGMENT_SUFFIX)
    reference = folders['p0']
    if not reference:
        raise BappsLayoutError(f'empty BAPPS category (no {IMAGE_SUFFIX} in p0/): {category_dir}')
    for name, stems in folders.items():
        suffix = JUDGMENT_SUFFIX if name == task.judgment_dir else IMAGE_SUFFIX
        if stems - reference:
            extra = category_dir / name / (min(stems - reference) + suffix)
            raise BappsLayoutError(f'{extra} has no p0 image')
        if reference - stems:
            stem = min(reference - stems)
            missing = category_dir / name / (stem + suffix)
            raise BappsLayoutError(
                f'missing {missing}: p0/{stem}{IMAGE_SUFFIX} has no partner in {name}/'
            )
    return sorted(reference)


def _load_judgment(path: Path) -> float:
    """The single number in [0, 1] a BAPPS ``judge``/``same`` file holds."""
    try:
        values = np.load(path).reshape(-1)
    except (OSError, ValueError) as error:
        raise BappsLayoutError(f'unreadable judgment file {path}: {error}') from None
    if values.size != 1 or not 0.0 <= float(values[0]) <= 1.0:
        raise BappsLayoutError(
            f'judgment file {path} must hold one number in [0, 1], got {values!r}'
        )
    return float(values[0])


def _category_rows(root: Path, task: _Task, category: str) -> list[Row]:
    """Rows of one category, in file-name order."""
    category_dir = root / task.folder / category
    split = task.folder.split('/')[1]

    def rel(folder: str, stem: str) -> str:
        return (category_dir / folder / (stem + IMAGE_SUFFIX)).relative_to(root).as_posix()

    return [
        Row(
            ref=rel('ref', stem) if 'ref' in task.image_dirs else JND_REF_MARKER,
            p0=rel('p0', stem),
            p1=rel('p1', stem),
            judgment=_load_judgment(category_dir / task.judgment_dir / (stem + JUDGMENT_SUFFIX)),
            split=split,
        )
        for stem in _matched_stems(category_dir, task)
    ]


def collect_rows(root: Path) -> list[Row]:
    """Check the BAPPS layout under ``root`` and return all meta-info rows in pyiqa's order.

    Raises:
        BappsLayoutError: one-line description of the first problem found.
    """
    root = Path(root)
    _check_is_bapps(root)
    rows: list[Row] = []
    for task in _TASKS:
        task_dir = root / task.folder
        if not task_dir.is_dir():
            if task.required:
                raise BappsLayoutError(f'missing BAPPS subfolder: {task_dir}')
            continue
        _check_categories(task_dir, task)
        for category in sorted(task.categories):
            rows += _category_rows(root, task, category)
    return rows


def write_meta_info(rows: list[Row], out_dir: Path) -> tuple[Path, Path]:
    """Write pyiqa's meta-info CSV and split pickle for ``rows`` into ``out_dir``; return both."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, split_path = out_dir / META_INFO_NAME, out_dir / SPLIT_FILE_NAME
    with csv_path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_HEADER)
        writer.writerows((r.ref, r.p0, r.p1, r.judgment, SPLIT_CODES[r.split]) for r in rows)
    splits = {'train': [], 'val': [], 'test': []}
    for index, row in enumerate(rows):
        splits[row.split].append(index)
    with split_path.open('wb') as handle:
        pickle.dump({SPLIT_INDEX: splits}, handle)
    return csv_path, split_path


def dataset_options(
    root: Path,
    phase: str,
    mode: str = '2afc',
    meta_dir: Path | None = None,
    val_types: list[str] | None = None,
) -> dict:
    """Options for ``pyiqa.data.build_dataset`` that read the files this command wrote.

    Args:
        root: BAPPS_ROOT (pyiqa's ``dataroot_target``; CSV paths are relative to it).
        phase: ``'train'`` or ``'val'`` (selects rows through the split file).
        mode: ``'2afc'`` (triplets, items have ``ref_img``) or ``'jnd'`` (pairs, no ``ref_img``).
        meta_dir: Where ``prepare-bapps`` wrote; default :func:`default_output_dir`.
        val_types: pyiqa's filter: keep rows whose p0 path contains any of these substrings, e.g.
            ``['/superres/']`` for one category (a bare name can match more than intended, and a row
            matching two entries is returned twice).
    """
    meta_dir = default_output_dir(root) if meta_dir is None else Path(meta_dir)
    options = {
        'name': f'BAPPS-{mode}-{phase}',
        'type': 'BAPPSDataset',
        'dataroot_target': str(root),
        'meta_info_file': str(meta_dir / META_INFO_NAME),
        'split_file': str(meta_dir / SPLIT_FILE_NAME),
        'split_index': SPLIT_INDEX,
        'phase': phase,
        'override_phase': phase,
        'mode': mode,
    }
    if val_types is not None:
        options['val_types'] = list(val_types)
    return options
