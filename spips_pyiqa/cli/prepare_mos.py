"""python -m spips_pyiqa prepare-mos ROOT | --pyiqa NAME: pyiqa meta-info + scene-wise splits for MOS data.

Writes pyiqa's meta-info CSV and a split file whose folds never put a reference scene on both
sides, for a full-reference MOS data set: a folder of images with a scores CSV, e.g.

    python -m spips_pyiqa prepare-mos my_data --name my_data
    # -> datasets/meta_info/meta_info_my_data.csv, datasets/meta_info/my_data_scene_splits.pkl

several folders, each with its ``scores.csv``, as one data set (paths relative to their common
folder, which becomes pyiqa's ``dataroot_target`` and ``dataroot_ref``; each row keeps its scene)::

    python -m spips_pyiqa prepare-mos ../shared/data/live_dev ../shared/data/live_jpeg_dev --name live_17 --folds 5

or a pyiqa data set laid out as pyiqa's default_dataset_configs.yml expects (its meta-info file
read by column position: reference, distorted, score):

    python -m spips_pyiqa prepare-mos --pyiqa kadid10k --data-root ./datasets --folds 5

What is written and checked: :mod:`spips_pyiqa.data.mos_prepare`.
"""

from pathlib import Path

from spips_pyiqa.cli.arguments import command_parser, run_command, usage_error
from spips_pyiqa.data.mos_prepare import MosDataError, read_mos_folders, read_scores, write_mos_meta_info
from spips_pyiqa.data.pyiqa_datasets import fr_dataset_names, fr_dataset_options


def _parser():
    parser = command_parser('prepare-mos', __doc__)
    parser.add_argument('root', type=Path, nargs='*',
                        help='data folder(s); image paths in each scores CSV are relative to its folder')
    parser.add_argument('--scores', type=Path, help='scores CSV (default: ROOT/scores.csv; one ROOT only)')
    parser.add_argument('--pyiqa', metavar='NAME', help="a pyiqa FR data set (live, csiq, tid2013, kadid10k, pipal...): "
                        "folders and meta-info from pyiqa's config under --data-root")
    parser.add_argument('--data-root', type=Path, default=Path('datasets'), help="pyiqa's ./datasets (with --pyiqa)")
    parser.add_argument('--name', help='data set name used in the file names (default: the --pyiqa name, else mos)')
    parser.add_argument('--out', type=Path, default=Path('datasets/meta_info'),
                        help='output folder (default: datasets/meta_info)')
    parser.add_argument('--dist-column', default='dist_img',
                        help='scores CSV column of the distorted image paths (default: %(default)s)')
    parser.add_argument('--ref-column', default='ref_img',
                        help='scores CSV column of the reference image paths (default: %(default)s)')
    parser.add_argument('--mos-column', default='dmos', help='scores CSV column of the scores (default: %(default)s)')
    parser.add_argument('--scene-column', help='scene of each row (default: its reference image)')
    parser.add_argument('--folds', type=int, help='number of folds (default: one per scene)')
    return parser


def cli(argv: list[str]) -> int:
    """Entry point of prepare-mos: 0 done, 2 bad command line, 1 bad data or unwritable output."""
    parser = _parser()

    def prepare(args) -> int | None:
        if args.pyiqa and args.pyiqa not in fr_dataset_names():
            return usage_error(parser, f'--pyiqa {args.pyiqa}: not a pyiqa full-reference data set (one of: '
                                       f'{", ".join(fr_dataset_names())})')
        if args.pyiqa:
            options = fr_dataset_options(args.pyiqa, args.data_root)
            root = Path(options['dataroot_target'])
            rows = read_scores(root, Path(options['meta_info_file']), 1, 0, 2, args.scene_column,
                               ref_root=options.get('dataroot_ref'))
        elif not args.root:
            return usage_error(parser, 'give a data folder ROOT or --pyiqa NAME')
        elif len(args.root) > 1:
            if args.scores:
                return usage_error(parser, '--scores names one CSV: give one ROOT with it, or a scores.csv in each ROOT')
            common, rows = read_mos_folders(args.root, args.dist_column, args.ref_column, args.mos_column,
                                            args.scene_column)
            print(f'{len(args.root)} folders read as one data set: image paths relative to {common}')
        else:
            root = args.root[0]
            rows = read_scores(
                root, args.scores or root / 'scores.csv',
                args.dist_column, args.ref_column, args.mos_column, args.scene_column,
            )
        name = args.name or args.pyiqa or 'mos'
        csv_path, split_path, folds = write_mos_meta_info(rows, args.out, name, args.folds)
        described = '; '.join(f'{k}: {", ".join(s)}' for k, s in enumerate(folds, start=1))
        print(f'wrote {csv_path} ({len(rows)} rows) and {split_path} (held-out scenes per split_index: {described})')

    return run_command(parser, argv, prepare, (MosDataError, ValueError, OSError))
