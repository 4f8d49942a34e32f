r"""Leaderboard rows for pyiqa's full-reference data sets, in pyiqa's ``FR_benchmark_results.csv`` format.

``python -m spips_pyiqa benchmark --pyiqa-datasets live csiq tid2013 kadid10k pipal --data-root
./datasets`` builds each data set from pyiqa's own ``default_dataset_configs.yml`` (paths under
``--data-root``, :mod:`spips_pyiqa.data.pyiqa_datasets`) with ``pyiqa.data.build_dataset``, scores
every (distorted, reference) pair with each metric made by ``pyiqa.create_metric``, and writes the
table pyiqa publishes (its ``benchmark_results.py``, ``tests/FR_benchmark_results.csv``)::

    Metric name,live(PLCC/SRCC/KRCC),kadid10k(PLCC/SRCC/KRCC)
    psnr,0.7633/0.8013/0.5964,...

* columns: the data set names as given, ``<name>(PLCC/SRCC/KRCC)``; one row per metric;
* cells: each correlation rounded to 4 decimals by Python's ``round`` and printed as ``str``
  (``0.489``, not ``0.4890``), joined by ``/``, exactly as pyiqa's script writes them;
* the phase: pyiqa's benchmark scores phase ``test`` unless the config names one; that only
  matters for data sets with a split column (PIPAL's ``official_split``);
* PLCC: plain Pearson, pyiqa's protocol ("PLCC without any correction", pyiqa's benchmark docs),
  so the rows sit beside pyiqa's; ``logistic=True`` (``--logistic-plcc``) gives the VQEG
  logistic-fit PLCC of the project's other tables instead.

**Signs.** Scores become distances (higher-better metrics negated,
:func:`~spips_pyiqa.metrics.bapps_scores.to_distance`) and human scores become badness (DMOS as
is, MOS negated, by the data set's ``lower_better``), then
:func:`~spips_pyiqa.metrics.correlation.correlations` gives values that are **positive when the
metric agrees with people**. pyiqa's published table lists magnitudes (its LIVE and CSIQ rows are
positive although their labels are DMOS); the two agree whenever the metric agrees with people,
and a metric ranking backwards shows here as a negative cell instead of a plausible positive one.

Scores go through the benchmark's :class:`~spips_pyiqa.benchmark.cache.ScoreCache` under
``pyiqa-<name>-<phase>``, keyed by the metric's fingerprint and the bytes of the meta-info file and
every image, so adding a metric scores only that metric.
"""

import csv
import hashlib
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from spips_pyiqa.benchmark.cache import ScoreCache, cache_key, files_sha256
from spips_pyiqa.benchmark.tables import Table, markdown, relative_path
from spips_pyiqa.data.pyiqa_datasets import fr_dataset_options, missing_paths, score_is_badness
from spips_pyiqa.evaluation.mos import agreement
from spips_pyiqa.metrics.correlation import Correlations

__all__ = [
    'LEADERBOARD_METRICS',
    'DatasetUnavailable',
    'FRSet',
    'leaderboard_cell',
    'leaderboard_table',
    'load_fr_set',
    'load_fr_sets',
    'write_leaderboard',
]

#: Metrics of the table when ``--metrics`` is not given: the SPIPS variants and pyiqa's usual rows.
LEADERBOARD_METRICS = (
    'spips', 'spips-vgg', 'spips-no-semantic', 'spips-no-traditional', 'lpips', 'dists', 'psnr', 'ssim',
)
#: Phase scored when pyiqa's config names none (pyiqa's ``benchmark_results.py`` does the same).
DEFAULT_PHASE = 'test'
STEM = 'leaderboard_pyiqa_fr'


class DatasetUnavailable(RuntimeError):
    """A requested data set cannot be scored; the message is one line saying why."""


@dataclass(frozen=True)
class FRSet:
    """One pyiqa full-reference data set, built and checked.

    Attributes:
        name: pyiqa's name (``live``, ``kadid10k``, ...).
        options: pyiqa's options it was built from (paths under the data root, ``phase`` set).
        dataset: pyiqa's ``GeneralFRDataset``; ``dataset[i]`` gives ``img``, ``ref_img``, ``mos_label``.
        items: each row's distorted image path relative to ``dataroot_target`` (the cache's names).
        badness: human scores oriented so that higher = worse (DMOS as is, MOS negated).
        key: sha256 over the meta-info (and split) file and every image, for the score cache.
    """

    name: str
    options: dict
    dataset: Any
    items: tuple
    badness: np.ndarray
    key: str

    @property
    def cache_name(self) -> str:
        return f'pyiqa-{self.name}-{self.options["phase"]}'


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


def load_fr_set(name: str, data_root: Path, phase: str = DEFAULT_PHASE) -> FRSet:
    """Build pyiqa's data set ``name`` under ``data_root`` and check it can be scored.

    Raises:
        ValueError: ``name`` is not one of pyiqa's full-reference data sets.
        DatasetUnavailable: its folders or meta-info file are absent, pyiqa cannot read it, the
            phase selects no row, an image it lists is missing, a label is not finite, or a
            distorted image is listed twice.
    """
    from pyiqa.data import build_dataset

    options = fr_dataset_options(name, Path(data_root))
    missing = missing_paths(options)
    if missing:
        raise DatasetUnavailable(f'{name}: not found under {relative_path(data_root)} (missing '
                                 f'{", ".join(relative_path(Path(p)) for p in missing)}): skipped')
    options.setdefault('phase', phase)
    try:
        dataset = build_dataset(options)
    except Exception as error:  # pandas / pickle / pyiqa assertion: report, do not crash the run
        raise DatasetUnavailable(f'{name}: pyiqa cannot read it ({type(error).__name__}: {error}): skipped') from error
    rows = dataset.paths_mos
    if not rows:
        raise DatasetUnavailable(f'{name}: no row for phase {options["phase"]!r}: skipped')
    paths = _unique([Path(p) for row in rows for p in row[:2]])
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise DatasetUnavailable(f'{name}: {len(absent)} of {len(paths)} images listed in '
                                 f'{relative_path(options["meta_info_file"])} are missing (first: '
                                 f'{relative_path(absent[0])}): skipped')
    labels = np.array([float(row[2]) for row in rows])
    if not np.all(np.isfinite(labels)):
        raise DatasetUnavailable(f'{name}: {int(np.sum(~np.isfinite(labels)))} labels are not finite: skipped')
    target_root = Path(options['dataroot_target'])
    items = tuple(Path(os.path.relpath(row[1], target_root)).as_posix() for row in rows)
    if len(set(items)) != len(items):
        raise DatasetUnavailable(f'{name}: a distorted image is listed twice in '
                                 f'{relative_path(options["meta_info_file"])}: skipped')
    listing = [Path(options[k]) for k in ('meta_info_file', 'split_file') if k in options]
    transforms = json.dumps({k: options.get(k) for k in ('augment', 'img_range')}, sort_keys=True, default=str)
    key = hashlib.sha256((files_sha256(listing + paths) + transforms).encode()).hexdigest()
    badness = labels if score_is_badness(options) else -labels
    return FRSet(name, options, dataset, items, badness, key)


def load_fr_sets(names: Sequence[str], data_root: Path, say: Callable[[str], None]) -> list[FRSet]:
    """:func:`load_fr_set` for each name; an unavailable set is reported through ``say`` and left out."""
    sets = []
    for name in names:
        try:
            sets.append(load_fr_set(name, data_root))
        except DatasetUnavailable as reason:
            say(f'leaderboard: {reason}')
    return sets


def fr_set_scores(metric, fr_set: FRSet, cache: ScoreCache) -> np.ndarray:
    """Raw scores of ``metric`` (a ``BenchMetric``) on every row of ``fr_set``, through the cache.

    Shape:
        returns ``(N,)`` in the order of ``fr_set.items``.
    """
    row_of = {item: i for i, item in enumerate(fr_set.items)}

    def compute(items):
        values = []
        for item in tqdm(items, desc=f'{fr_set.name} {metric.name}', file=sys.stderr, leave=False):
            sample = fr_set.dataset[row_of[item]]
            values.append(metric.score(sample['img'][None], sample['ref_img'][None]))
        return values

    key = cache_key(metric.fingerprint, fr_set.key)
    return cache.scores(fr_set.cache_name, metric.name, key, fr_set.items, compute, metric.fingerprint)


def leaderboard_cell(c: Correlations) -> str:
    """``PLCC/SRCC/KRCC`` as pyiqa writes it: ``round(x, 4)`` printed by ``str`` (``nan`` when undefined)."""
    return '/'.join(str(round(v, 4)) if math.isfinite(v) else 'nan' for v in (c.plcc, c.srcc, c.krcc))


def column(name: str) -> str:
    """pyiqa's column header of data set ``name``."""
    return f'{name}(PLCC/SRCC/KRCC)'


def _describe(fr_set: FRSet) -> str:
    """``name: folder, [phase,] n, label direction`` for the table's notes."""
    options = fr_set.options
    split = any(k in options for k in ('split_file', 'split_index'))
    return (f'{fr_set.name}: {relative_path(options["dataroot_target"])}, '
            + (f'phase {options["phase"]}, ' if split else '')
            + f'n={len(fr_set.items)}, labels {"DMOS-like" if score_is_badness(options) else "MOS-like"} '
            f'in {options.get("mos_range")}')


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def leaderboard_table(
    metrics: dict, sets: Sequence[FRSet], cache: ScoreCache, logistic: bool = False,
    say: Callable[[str], None] = _say,
) -> Table:
    """One row per metric (``name -> BenchMetric``), one ``PLCC/SRCC/KRCC`` cell per data set.

    A metric that raises on a data set (e.g. images below its minimum size) gets the cell ``n/a``
    and a line through ``say``; the other cells are still computed.
    """
    cells = {}
    for fr_set in sets:
        for name, metric in metrics.items():
            try:
                scores = fr_set_scores(metric, fr_set, cache)
            except (ValueError, RuntimeError) as error:
                say(f'leaderboard: {name} fails on {fr_set.name} ({str(error).splitlines()[0]}): cell n/a')
                cells[name, fr_set.name] = 'n/a'
                continue
            cells[name, fr_set.name] = leaderboard_cell(
                agreement(scores, metric.lower_better, fr_set.badness, logistic=logistic)['all'])
    plcc = ('PLCC after the VQEG 4-parameter logistic fit (not pyiqa\'s protocol)' if logistic
            else 'PLCC without any fit (pyiqa\'s protocol)')
    notes = [
        'Data: ' + '; '.join(_describe(s) for s in sets) + '.',
        f'Sign-corrected correlations (positive = agrees with people; pyiqa\'s own table lists '
        f'magnitudes). {plcc}; SRCC = Spearman; KRCC = Kendall tau-b; rounded to 4 decimals like pyiqa.',
        *(f'Checkpoint of `{name}`: {m.fingerprint["provenance"]}.' for name, m in metrics.items() if m.is_spips),
    ]
    table = Table('Leaderboard rows: pyiqa full-reference data sets (PLCC/SRCC/KRCC)',
                  ['Metric name', *(column(s.name) for s in sets)], notes=notes)
    for name in metrics:
        table.rows.append({'Metric name': name,
                           **{column(s.name): cells[name, s.name] for s in sets}})
    return table


def write_leaderboard(table: Table, out: Path, stem: str = STEM) -> tuple[Path, Path]:
    """``out/<stem>.csv`` exactly in pyiqa's format (header + rows, no comment line) and
    ``out/<stem>.md`` (with the notes); returns both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f'{stem}.csv', out / f'{stem}.md'
    with csv_path.open('w', newline='') as handle:
        writer = csv.writer(handle, lineterminator='\n')
        writer.writerow(table.columns)
        writer.writerows([row[c] for c in table.columns] for row in table.rows)
    md_path.write_text(markdown(table))
    return csv_path, md_path
