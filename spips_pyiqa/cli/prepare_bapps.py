"""python -m spips_pyiqa prepare-bapps BAPPS_ROOT [--out DIR]: pyiqa meta-info for BAPPS.

Checks the BAPPS layout (2afc/ and jnd/ folders) and writes the meta-info CSV and split file that
pyiqa's BAPPSDataset reads. What is written and which layout is checked:
:mod:`spips_pyiqa.data.bapps_prepare`.
"""

from pathlib import Path

from spips_pyiqa.cli.arguments import command_parser, run_command
from spips_pyiqa.data.bapps_prepare import (
    JND_REF_MARKER,
    META_INFO_NAME,
    SPLIT_FILE_NAME,
    BappsLayoutError,
    Row,
    collect_rows,
    default_output_dir,
    write_meta_info,
)


def _parser():
    parser = command_parser('prepare-bapps', __doc__,
                            epilog=f"Written: {META_INFO_NAME} and {SPLIT_FILE_NAME}.")
    parser.add_argument('root', type=Path, help='BAPPS folder holding 2afc/ and jnd/')
    parser.add_argument('--out', type=Path, help='output folder (default: BAPPS_ROOT/meta_info)')
    return parser


def _summary(rows: list[Row]) -> str:
    """``'2afc train: 3, 2afc val: 12, jnd val: 4'`` style row counts."""
    counts: dict[str, int] = {}
    for row in rows:
        label = f'{"jnd" if row.ref == JND_REF_MARKER else "2afc"} {row.split}'
        counts[label] = counts.get(label, 0) + 1
    return ', '.join(f'{label}: {count}' for label, count in counts.items())


def _prepare(args) -> None:
    out_dir = default_output_dir(args.root) if args.out is None else args.out
    rows = collect_rows(args.root)
    csv_path, split_path = write_meta_info(rows, out_dir)
    print(f'wrote {csv_path} ({len(rows)} rows; {_summary(rows)}) and {split_path}')


def cli(argv: list[str]) -> int:
    """Entry point of prepare-bapps: 0 done, 2 bad command line, 1 a bad BAPPS folder or unwritable output."""
    return run_command(_parser(), argv, _prepare, (BappsLayoutError, OSError))
