"""The scores CSV of ``python -m spips_pyiqa score``: a row per pair, a column per metric, and what
each row was computed from.

Columns: ``name, target, ref`` (the target's file name, both resolved paths), one
``METRIC (lower is better)`` or ``METRIC (higher is better)`` column per metric (pyiqa's
``lower_better``), then ``target_bytes, target_mtime_ns, ref_bytes, ref_mtime_ns``: size and
modification time of both files when the row's scores were computed (its *stamp*). An empty
metric cell: not computed for that pair. Scores keep float32 precision (9 significant digits).

A stamp is one ``stat`` per file; a content hash would read every file again. Measured by
``python -m spips_pyiqa.benchmark.resume_stamp`` on 1,000 pairs of 512 px PNGs (1 GiB, page cache warm, a
busy 2-core machine): stamps 0.3 s, sha256 30 s, BLAKE2b 25 s, decoding the pairs 156 s. Hashing
would add a fifth of the decoding to every resume, even one with nothing left to do; stamps add
nothing measurable, so stamps it is.
What they miss: a file rewritten with the same size within the file system's timestamp
resolution, or an edit whose tool restores the old mtime (rerun with ``overwrite`` then).
"""

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spips_pyiqa.utils.journal import CsvJournal

__all__ = ['KEY_COLUMNS', 'STAMP_COLUMNS', 'ScoreRow', 'Stamp', 'directions_in', 'file_stamp', 'header',
           'pair_stamp', 'read_scores', 'scores_journal']

KEY_COLUMNS = ('name', 'target', 'ref')
STAMP_COLUMNS = ('target_bytes', 'target_mtime_ns', 'ref_bytes', 'ref_mtime_ns')
#: (target size, target mtime_ns, ref size, ref mtime_ns)
Stamp = tuple[int, int, int, int]
_METRIC_COLUMN = re.compile(r'^(?P<metric>.+) \((?P<direction>lower|higher) is better\)$')
WHAT = 'a scores file of spips_pyiqa score'


def file_stamp(path) -> tuple[int, int]:
    """(size in bytes, modification time in ns) of ``path``."""
    status = os.stat(path)
    return status.st_size, status.st_mtime_ns


def pair_stamp(target: Path, ref: Path) -> Stamp:
    return (*file_stamp(target), *file_stamp(ref))


def _metric_column(metric: str, lower_better: bool) -> str:
    return f'{metric} ({"lower" if lower_better else "higher"} is better)'


def header(lower_better: Mapping[str, bool]) -> list[str]:
    """The columns for the metrics of ``lower_better`` (metric -> direction), in its order."""
    return [*KEY_COLUMNS, *(_metric_column(m, low) for m, low in lower_better.items()), *STAMP_COLUMNS]


def directions_in(fieldnames: Sequence[str]) -> dict[str, bool] | None:
    """metric -> lower_better of a scores header; ``None`` when ``fieldnames`` is not one."""
    keys, stamps = len(KEY_COLUMNS), len(STAMP_COLUMNS)
    if (len(fieldnames) < keys + stamps or tuple(fieldnames[:keys]) != KEY_COLUMNS
            or tuple(fieldnames[-stamps:]) != STAMP_COLUMNS):
        return None
    found = [_METRIC_COLUMN.match(name) for name in fieldnames[keys:-stamps]]
    if not all(found):
        return None
    return {m['metric']: m['direction'] == 'lower' for m in found}


def scores_journal(path: Path, lower_better: Mapping[str, bool]) -> CsvJournal:
    """The journal of scores file ``path`` writing these metric columns, reading any scores header."""
    return CsvJournal(path, header(lower_better), accepts=lambda names: directions_in(names) is not None, what=WHAT)


@dataclass(frozen=True)
class ScoreRow:
    """One pair's row: ``target``/``ref`` resolved paths as text, its stamp, its metric values."""

    name: str
    target: str
    ref: str
    stamp: Stamp
    values: dict[str, float]

    def cells(self, metrics: Sequence[str]) -> list[str]:
        """The CSV cells under :func:`header` of ``metrics`` (empty where not computed)."""
        scores = [f'{self.values[m]:.9g}' if m in self.values else '' for m in metrics]
        return [self.name, self.target, self.ref, *scores, *map(str, self.stamp)]

    @classmethod
    def parse(cls, row: Mapping[str, str], source: Path) -> 'ScoreRow':
        """A row of a file whose header :func:`directions_in` accepted; bad cells name ``source``."""
        values = {}
        for column, cell in row.items():
            found = _METRIC_COLUMN.match(column or '')
            if found is None or column in KEY_COLUMNS or cell in ('', None):
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise ValueError(f'{source}: bad {found["metric"]} score {cell!r} for {row["name"]}')
            values[found['metric']] = value
        try:
            stamp = tuple(int(row[column]) for column in STAMP_COLUMNS)
        except (TypeError, ValueError):
            raise ValueError(f'{source}: bad file size or time for {row["name"]}') from None
        return cls(row['name'], row['target'], row['ref'], stamp, values)


def read_scores(path: Path) -> list[ScoreRow]:
    """The rows of a finished scores file (refused unless :func:`directions_in` accepts its header)."""
    return [ScoreRow.parse(row, Path(path)) for row in scores_journal(path, {}).read(with_journal=False)]
