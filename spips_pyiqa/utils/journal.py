"""A CSV result file that survives interruption: durable appends to a journal, atomic completion.

While a job runs, finished rows are appended to ``OUT.partial`` (flushed and fsync'ed after each
batch of rows), so a crash or Ctrl-C loses nothing already written. When the job ends,
:meth:`CsvJournal.finish` writes every row to a temporary file next to ``OUT``, fsyncs it and
renames it onto ``OUT`` (atomic on POSIX), then removes the journal: ``OUT`` is either absent, the
previous complete file, or the new complete file, never half-written.

A rerun calls :meth:`CsvJournal.read` (the rows of both files, the journal's last), then
:meth:`CsvJournal.restart` (the journal rewritten atomically under the current header, e.g. with
a column added, its torn last line gone), then appends. Files whose header the journal does not
accept, or that are not CSV text at all, are refused with one line and never modified.
"""

import csv
import io
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ['CsvJournal', 'NotOurFileError']


class NotOurFileError(ValueError):
    """An existing file at the result path that this journal did not write: left untouched."""


def _fsync_write(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _write_atomically(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """``path`` := header + rows, through a fsync'ed temporary file renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(descriptor, 'w', newline='') as handle:
            writer = csv.writer(handle, lineterminator='\n')
            writer.writerow(header)
            writer.writerows(rows)
            _fsync_write(handle)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CsvJournal:
    """Rows of ``header`` columns for the CSV file ``path`` (see the module docstring).

    Args:
        accepts: which headers of existing files are ours (default: exactly ``header``); e.g. a
            wider or narrower set of columns of the same kind.
        what: how refusals name a file of ours (``'a scores file of spips_pyiqa'``).
    """

    def __init__(self, path: Path, header: Sequence[str], accepts: Callable[[list[str]], bool] | None = None,
                 what: str = 'a results file of this command'):
        self.path = Path(path)
        self.header = list(header)
        self.accepts = accepts or (lambda fieldnames: fieldnames == self.header)
        self.what = what
        self.partial = self.path.with_name(self.path.name + '.partial')

    def _rows_of(self, path: Path, complete_lines_only: bool) -> list[dict[str, str]]:
        if path.is_dir():
            raise NotOurFileError(f'{path} is a folder, not {self.what}: choose a file name')
        data = path.read_bytes()
        if complete_lines_only and data and not data.endswith(b'\n'):
            data = data[: data.rfind(b'\n') + 1]  # a torn last row (dropped, rewritten by restart)
        try:
            text = data.decode()
            reader = csv.DictReader(io.StringIO(text, newline=''))
            fieldnames = reader.fieldnames
            rows = list(reader)
        except (UnicodeDecodeError, csv.Error):
            raise NotOurFileError(f'{path} is not {self.what} (not CSV text); nothing was written: '
                                  'choose another file name or remove it') from None
        if not text and path == self.partial:
            return []
        if fieldnames is None or not self.accepts(list(fieldnames)):
            raise NotOurFileError(f'{path} is not {self.what} (columns {fieldnames}); nothing was written: '
                                  'choose another file name or remove it')
        return rows

    def read(self, with_journal: bool = True) -> list[dict[str, str]]:
        """Rows already in ``path`` and then in its journal (``[]`` when neither exists)."""
        rows = self._rows_of(self.path, False) if self.path.exists() else []
        if with_journal and self.partial.exists():
            rows += self._rows_of(self.partial, True)
        return rows

    def restart(self, rows: Sequence[Sequence[str]]) -> None:
        """The journal := ``rows`` under :attr:`header`, atomically (removed when ``rows`` is empty)."""
        if rows:
            _write_atomically(self.partial, self.header, rows)
        else:
            self.partial.unlink(missing_ok=True)

    def append(self, rows: Sequence[Sequence[str]]) -> None:
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

    def finish(self, rows: Sequence[Sequence[str]]) -> Path:
        """Write all ``rows`` to ``path`` atomically and remove the journal; return ``path``."""
        _write_atomically(self.path, self.header, rows)
        self.partial.unlink(missing_ok=True)
        return self.path

    def discard(self) -> None:
        """Remove ``path`` and the journal (a fresh start); refuses files that are not ours."""
        self.read()
        self.path.unlink(missing_ok=True)
        self.partial.unlink(missing_ok=True)
