"""Scoring throughput: ``python -m spips_pyiqa score`` vs pyiqa's own command line, and where the time goes.

``python -m spips_pyiqa benchmark --only scoring`` (section ``scoring`` of :mod:`spips_pyiqa.benchmark.run`)
writes ``scoring_throughput.{md,csv}``. For each size (``--scoring-sizes``: ``512`` px squares and
``2K``, 2040x1356 as the DIV2K validation images) it writes ``--scoring-pairs`` (default 200)
(target, reference) PNG pairs into a temporary folder: scikit-image photographs resized to the
size, each distorted by noise, blur or JPEG (:mod:`spips_pyiqa.data.distortions`), and times:

* **whole process**, start-up included, as a user runs it:
  ``python -m spips_pyiqa score TARGET_DIR REF_DIR --metric M --out scores.csv`` in one process and
  under ``torchrun --nproc_per_node=2`` (the command shards the pairs itself), and pyiqa's
  ``pyiqa M1 M2 -t TARGET_DIR -r REF_DIR`` (its console script, ``pyiqa.pyiqa_cmd``) in one process
  and as two concurrent processes on the two halves of the pairs (pyiqa has no sharding of its
  own); the cores are shared out, one thread per process and core;
* **the parts**, in this process on the same pairs: start-up (``score`` of one pair, whole process),
  decoding alone (:func:`~spips_pyiqa.data.image_io.load_image` of every target and reference),
  each metric alone on the decoded tensors (one pair per call), and writing the CSV through the
  journal ``score`` uses (:class:`~spips_pyiqa.utils.journal.CsvJournal`).

The metric list (``--scoring-metrics``, default ``spips``) goes to both tools; ``score`` gets it
as one ``--metric`` value, comma-separated when there are several.
"""

import csv
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from spips_pyiqa.benchmark.processes import launch, load_average, run_concurrently
from spips_pyiqa.benchmark.tables import Table

__all__ = ['SIZES', 'scoring_table', 'write_pairs']

#: Image sizes (height, width): 512 px squares and DIV2K validation's 2040x1356.
SIZES = {'512': (512, 512), '2K': (1356, 2040)}
#: Distinct pairs written per size; the other pairs are copies (decoding costs the same).
DISTINCT_PAIRS = 12
KINDS = ('noise', 'blur', 'jpeg')


def pyiqa_mean(output: str, metric: str) -> float:
    """The mean of ``metric`` in what pyiqa's CLI prints (``pprint`` of ``{metric: {'mean': x}}``,
    keys sorted, numpy scalars as ``np.float64(x)``); NaN when absent."""
    found = re.search(re.escape(repr(metric)) + r": \{[^{}]*?'mean': (?:np\.float\d+\()?([-+\d.eE]+)", output)
    return float(found[1]) if found else float('nan')


def write_pairs(folder: Path, n_pairs: int, height: int, width: int, distinct: int = DISTINCT_PAIRS) -> tuple[Path, Path]:
    """``folder/target/NNNNN.png`` and ``folder/ref/NNNNN.png``: ``n_pairs`` pairs of ``height x width``.

    References are scikit-image photographs (:data:`~spips_pyiqa.data.distortions.PHOTOS`) resized
    to cover the size and centre-cropped; each target distorts its reference by noise, blur or JPEG
    at a severity 0-3 in turn. ``distinct`` pairs are made, the rest are copies of them.
    """
    import torchvision.transforms.functional as TF
    from PIL import Image

    from spips_pyiqa.data.distortions import PHOTOS, distort, photo

    target, ref = folder / 'target', folder / 'ref'
    target.mkdir(parents=True)
    ref.mkdir()
    for i in range(n_pairs):
        name = f'{i:05d}.png'
        if i >= distinct:
            for side in (target, ref):
                shutil.copyfile(side / f'{i % distinct:05d}.png', side / name)
            continue
        image = photo(PHOTOS[i % len(PHOTOS)])
        scale = max(height / image.shape[-2], width / image.shape[-1])
        image = TF.center_crop(TF.resize(image, [math.ceil(image.shape[-2] * scale), math.ceil(image.shape[-1] * scale)],
                                         antialias=True), [height, width]).clamp(0, 1)
        for side, picture in ((ref, image), (target, distort(image, KINDS[i % 3], i % 4))):
            array = (picture[0].permute(1, 2, 0).numpy() * 255).round().astype('uint8')
            Image.fromarray(array).save(side / name)
    return target, ref


def _halves(target: Path, ref: Path, work: Path) -> list[tuple[Path, Path]]:
    """Two (target, ref) folders of links to the first and second half of the pairs."""
    names = sorted(p.name for p in target.iterdir())
    parts = []
    for k, chunk in enumerate((names[: len(names) // 2], names[len(names) // 2 :])):
        folders = work / f'half{k}' / 'target', work / f'half{k}' / 'ref'
        for folder, source in zip(folders, (target, ref)):
            folder.mkdir(parents=True)
            for name in chunk:
                (folder / name).symlink_to(source / name)
        parts.append(folders)
    return parts


def _timed(function: Callable[[], object]) -> float:
    began = time.perf_counter()
    function()
    return time.perf_counter() - began


def _pyiqa_command(metrics: Sequence[str], target: Path, ref: Path) -> list[str]:
    """pyiqa's console script ``pyiqa METRICS -t TARGET -r REF`` as ``python -m`` (same code)."""
    return ['-m', 'pyiqa.pyiqa_cmd', *metrics, '-t', str(target), '-r', str(ref)]


def _parts(metrics: Sequence[str], target: Path, ref: Path, work: Path) -> dict[str, float]:
    """Seconds of decoding, of each metric on decoded tensors and of writing the CSV, in this process."""
    import pyiqa

    from spips_pyiqa.data.image_io import load_image
    from spips_pyiqa.utils.journal import CsvJournal

    pairs = [(target / p.name, ref / p.name) for p in sorted(target.iterdir())]
    decoded = []
    seconds = {'decode': _timed(lambda: decoded.extend((load_image(t), load_image(r)) for t, r in pairs))}
    rows = []
    for name in metrics:
        metric = pyiqa.create_metric(name, device='cpu')
        with torch.no_grad():
            metric(*decoded[0])  # warm-up
            seconds[f'metric {name}'] = _timed(lambda: rows.append([float(metric(t, r)) for t, r in decoded]))
    lines = [[t.name, *(f'{s:.9g}' for s in scores), str(t), str(r)] for (t, r), *scores in zip(pairs, *rows)]
    journal = CsvJournal(work / 'parts.csv', ['name', *metrics, 'target', 'ref'])
    seconds['write'] = _timed(lambda: journal.finish(lines))
    return seconds


def _score_args(metrics: Sequence[str], target: Path, ref: Path, out: Path) -> list[str]:
    return ['-m', 'spips_pyiqa', 'score', str(target), str(ref), '--metric', ','.join(metrics), '--out', str(out)]


def _our_mean(out: Path, metric: str) -> float:
    """Mean of ``metric`` in a ``score --out`` CSV (its column, or the ``score`` column of one metric)."""
    with out.open(newline='') as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith('#')))
    column = next((c for c in rows[0] if c.split(' ')[0] == metric), 'score')
    return float(np.mean([float(row[column]) for row in rows])) if column in rows[0] else float('nan')


def _one_pair(target: Path, ref: Path, folder: Path) -> tuple[Path, Path]:
    """Folders holding a link to the first pair only (a run that is all start-up)."""
    first = sorted(p.name for p in target.iterdir())[0]
    for side in (target, ref):
        (folder / side.name).mkdir(parents=True)
        (folder / side.name / first).symlink_to(side / first)
    return folder / target.name, folder / ref.name


def _size_rows(n_pairs: int, height: int, width: int, metrics: Sequence[str], here: Path, say) -> tuple[list, dict]:
    """The rows of one size, and the mean of the first metric per run (a check that all scored alike)."""
    cores = os.cpu_count() or 1
    target, ref = write_pairs(here / 'pairs', n_pairs, height, width)
    os.sync()  # the kernel writes the new files back now, not during the first timed run (measured: +3 s at 2K)
    say(f'scoring: {n_pairs} pairs of {width}x{height} written')
    rows, means = [], {}

    def row(run: str, processes: int, seconds: float, pairs: int = n_pairs) -> None:
        rows.append({'size': f'{width}x{height}', 'run': run,
                     'processes x threads': f'{processes} x {max(1, cores // processes)}',
                     'pairs': pairs, 'seconds': seconds, 'pairs/s': pairs / seconds})

    for nproc in (1, 2):
        out = here / f'score_{nproc}.csv'
        _, wall = launch(nproc, _score_args(metrics, target, ref, out), here, max(1, cores // nproc))
        row('spips_pyiqa score' + (' (torchrun)' if nproc > 1 else ''), nproc, wall)
        means[f'score x{nproc}'] = _our_mean(out, metrics[0])
    outputs, wall = run_concurrently([_pyiqa_command(metrics, target, ref)], here, cores)
    row('pyiqa CLI', 1, wall)
    means['pyiqa'] = pyiqa_mean(outputs[0], metrics[0])
    halves = [_pyiqa_command(metrics, t, r) for t, r in _halves(target, ref, here / 'halves')]
    row('pyiqa CLI (2 processes, half the pairs each)', 2, run_concurrently(halves, here, max(1, cores // 2))[1])
    _, start_up = launch(1, _score_args(metrics, *_one_pair(target, ref, here / 'one'), here / 'one.csv'), here, cores)
    row('part: start-up (score of one pair, whole process)', 1, start_up, pairs=1)
    for part, seconds in _parts(metrics, target, ref, here).items():
        row(f'part: {part}' + (' (in-process, one pair per call)' if part.startswith('metric') else ''), 1, seconds)
    whole = rows[0]['seconds']  # score, one process
    for r in rows:
        if r['run'].startswith('part:'):
            r['share of score wall'] = r['seconds'] / whole
    return rows, means


def scoring_table(n_pairs: int, sizes: Sequence[str], metrics: Sequence[str], environment: str,
                  say: Callable[[str], None] = print) -> Table:
    """Whole-process times of ``score`` and pyiqa's CLI (1 and 2 processes) and the parts, per size."""
    rows, notes = [], [environment, f'Load average (1/5/15 min) before: {load_average()}.']
    with tempfile.TemporaryDirectory(prefix='spips_scoring_') as temporary:
        for size in sizes:
            height, width = SIZES[size]
            size_rows, means = _size_rows(n_pairs, height, width, metrics, Path(temporary) / size, say)
            rows += size_rows
            notes.append(f'{width}x{height}: mean {metrics[0]} by ' + ', '.join(f'{k} {v:.6f}' for k, v in means.items())
                         + ' (equal: every run scored the same pairs).')
            say(f'scoring: {width}x{height} timed')
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        notes.append('The load average exceeded the number of cores: these times measure the machine\'s load more '
                     'than the tools.')
    notes += [f'Load average (1/5/15 min) after: {load_average()}.',
              'Whole-process rows include Python start-up, imports and metric creation (a user pays them); '
              '`part` rows are measured in one process on the same pairs: decode = load_image of target and '
              'reference, metric = the metric alone on decoded tensors, write = the CSV through CsvJournal; `share of '
              'score wall` = part seconds / seconds of the one-process score run.',
              f'Pairs: {DISTINCT_PAIRS} distinct synthetic PNG pairs (scikit-image photographs, noise/blur/JPEG), '
              'copied to the count; threads: the cores shared out, one per process and core. A shared machine '
              'inflates and scatters these times: regenerate on a quiet one.']
    return Table(f'Scoring throughput: spips_pyiqa score vs pyiqa CLI ({", ".join(metrics)}, CPU)',
                 ['size', 'run', 'processes x threads', 'pairs', 'seconds', 'pairs/s', 'share of score wall'], rows, notes,
                 digits=2)
