"""``python -m spips_pyiqa prepare-bapps BAPPS_ROOT [--out DIR]``: pyiqa meta-info for BAPPS.

What is written and which layout is checked: :mod:`spips_pyiqa.data.bapps_prepare`.
"""

import argparse
import sys
from pathlib import Path

from spips_pyiqa.cli.arguments import parse_or_exit_code
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m spips_pyiqa prepare-bapps',
        description=f"Write pyiqa's {META_INFO_NAME} and {SPLIT_FILE_NAME} for a BAPPS folder.",
    )
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


def cli(argv: list[str]) -> int:
    """Entry point of ``prepare-bapps``; returns the exit code (2 for a bad folder or arguments)."""
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    out_dir = default_output_dir(args.root) if args.out is None else args.out
    try:
        rows = collect_rows(args.root)
        csv_path, split_path = write_meta_info(rows, out_dir)
    except (BappsLayoutError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'wrote {csv_path} ({len(rows)} rows; {_summary(rows)}) and {split_path}')
    return 0
