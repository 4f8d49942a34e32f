"""Result tables of ``python -m spips_pyiqa benchmark``: one object, written as CSV and Markdown.

A :class:`Table` is a title, notes (what the data is, its size, provenance: printed above the
Markdown table and as ``#`` comment lines at the top of the CSV) and rows of named cells. The CSV
keeps raw values (full float precision, empty for missing); the Markdown rounds floats to
``digits`` and shows missing cells as ``n/a``. Strings pass through unchanged, so a cell can say
why a number is missing (``'n/a (fails)'``).
"""

import csv
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ['Table', 'format_cell', 'markdown', 'read_table_rows', 'relative_path', 'write_csv', 'write_table']


@dataclass
class Table:
    """A titled table.

    Attributes:
        title: one line, the Markdown heading.
        columns: column names, in order.
        rows: one dict per row, ``column -> value`` (missing keys are empty cells).
        notes: lines printed between the heading and the table (data, size, provenance).
        digits: decimals of floats in the Markdown rendering.
    """

    title: str
    columns: Sequence[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    digits: int = 3


def relative_path(path: Path) -> str:
    """``path`` relative to the working folder (the repository root under ``make benchmark``), e.g.
    ``../shared/data/live_dev``, so that tables name data the same way on every machine; absolute
    only across file systems (Windows drives)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path.cwd().resolve())).as_posix()
    except ValueError:
        return str(path)


def format_cell(value: Any, digits: int = 3) -> str:
    """A cell as Markdown text: floats rounded, ``None``/NaN as ``n/a``, anything else ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.{digits}f}'
    return str(value).replace('|', '\\|')


def markdown(table: Table) -> str:
    """The table as Markdown: ``### title``, the notes as a paragraph each, then the grid."""
    lines = [f'### {table.title}', '']
    for note in table.notes:
        lines += [note, '']
    lines.append('| ' + ' | '.join(table.columns) + ' |')
    lines.append('|' + '---|' * len(table.columns))
    for row in table.rows:
        cells = [format_cell(row.get(column), table.digits) for column in table.columns]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def _csv_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ''
    return repr(value) if isinstance(value, float) else str(value)


def write_csv(table: Table, out_dir, stem: str) -> Path:
    """Write ``out_dir/stem.csv`` only (raw data too long for a Markdown table); return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f'{stem}.csv'
    with csv_path.open('w', newline='') as handle:
        for line in [table.title, *table.notes]:
            handle.write(f'# {line}\n')
        writer = csv.writer(handle)
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_csv_cell(row.get(column)) for column in table.columns])
    return csv_path


def write_table(table: Table, out_dir, stem: str) -> tuple[Path, Path]:
    """Write ``out_dir/stem.csv`` and ``out_dir/stem.md``; return both paths."""
    csv_path = write_csv(table, out_dir, stem)
    md_path = csv_path.with_suffix('.md')
    md_path.write_text(markdown(table))
    return csv_path, md_path


def read_table_rows(path) -> list[dict[str, str]]:
    """Rows of a CSV written by :func:`write_table` (comment lines skipped), values as text."""
    with Path(path).open(newline='') as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith('#')))
