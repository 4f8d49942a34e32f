"""A CSV result file that survives interruption: durable appends to a journal, atomic completion.

While a job runs, finished rows are appended to ``OUT.partial`` (flushed and fsync'ed after each
batch of rows), so a crash or Ctrl-C loses nothing already written. When the job ends,
:meth:`CsvJournal.finish` writes every row to ``OUT.tmp``, fsyncs it and renames it onto ``OUT``
(atomic on POSIX), then removes the journal: ``OUT`` is either absent, the previous complete file,
or the new complete file, never half-written. :meth:`CsvJournal.read` returns the rows of both
files, so a rerun can skip what is done; a torn last line of the journal (the process died
mid-write) is dropped and cut off before new rows are appended.
"""

import csv
import io
import os
from pathlib import Path

__all__ = ['CsvJournal']


def _fsync_write(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


class CsvJournal:
    """Rows of ``header`` columns for the CSV file ``path`` (see the module docstring)."""

    def __init__(self, path: Path, header: list[str]):
        self.path = Path(path)
        self.header = list(header)
        self.partial = self.path.with_name(self.path.name + '.partial')

    def _rows_of(self, path: Path, complete_lines_only: bool) -> list[dict[str, str]]:
        data = path.read_bytes()
        if complete_lines_only and data and not data.endswith(b'\n'):
            data = data[: data.rfind(b'\n') + 1]  # a torn last row
            with path.open('r+b') as handle:
                handle.truncate(len(data))
        text = data.decode()
        if not text:
            return []
        reader = csv.DictReader(io.StringIO(text, newline=''))
        if reader.fieldnames != self.header:
            raise ValueError(
                f'{path} is not a results file of this command (columns {reader.fieldnames}, '
                f'expected {self.header}): choose another --out or remove it'
            )
        return list(reader)

    def read(self) -> list[dict[str, str]]:
        """Rows already in ``path`` and in its journal (``[]`` when neither exists)."""
        rows = self._rows_of(self.path, False) if self.path.is_file() else []
        if self.partial.is_file():
            rows += self._rows_of(self.partial, True)
        return rows

    def append(self, rows: list[list[str]]) -> None:
        """Append ``rows`` to the journal durably (written, flushed and fsync'ed on return)."""
        if not rows:
            return
        new = not self.partial.is_file() or self.partial.stat().st_size == 0
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        with self.partial.open('a', newline='') as handle:
            writer = csv.writer(handle, lineterminator='\n')
            if new:
                writer.writerow(self.header)
            writer.writerows(rows)
            _fsync_write(handle)

    def finish(self, rows: list[list[str]]) -> Path:
        """Write all ``rows`` to ``path`` atomically and remove the journal; return ``path``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + '.tmp')
        with temporary.open('w', newline='') as handle:
            writer = csv.writer(handle, lineterminator='\n')
            writer.writerow(self.header)
            writer.writerows(rows)
            _fsync_write(handle)
        os.replace(temporary, self.path)
        self.partial.unlink(missing_ok=True)
        return self.path
