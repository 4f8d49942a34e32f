"""python -m spips_pyiqa score: any pyiqa full-reference metrics on image files, folders, or methods.

  score TARGET REF                         two images, or two folders paired by file name
  score TARGET REF --metric spips,lpips,psnr --out scores.csv
  score --ref gt/ --methods a/ b/ c/ --metric spips,lpips,psnr,ssim --out-dir results/

Prints one line per pair in name order (name, then one score per metric; with several metrics a
header line first) and the mean for folders. Images are read with spips_pyiqa.load_image (EXIF
orientation applied, 16-bit at full precision). --out writes every score to a CSV (one column per
metric, its direction in the header), journaled while the run goes and replaced atomically at the
end; a rerun computes only what is missing or whose files changed since. --methods scores every
method folder against the same references and writes, under --out-dir, one CSV per method,
table.md and table.csv (mean and 95% bootstrap interval per method and metric, rank agreement
between metrics) and distributions.png.

Under torchrun --nproc_per_node=N -m spips_pyiqa score ... the pairs are sharded over the
processes; the lines and files are those of one process.

Exit status: 0 when every pair is scored, 2 for a wrong command line (unknown metric, options that
do not go together, outputs that would overwrite or land among the inputs), 1 for anything found
while working (unreadable or unpaired images, size mismatch, a scores file that is not ours,
unavailable device, missing weights).
"""

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from spips_pyiqa.cli.arguments import parse_or_exit_code
from spips_pyiqa.data.pairing import MATCH_MODES
from spips_pyiqa.utils.distributed import DistInfo, close_distributed, init_distributed, local_device


def checked_device(name: str) -> torch.device:
    """``torch.device(name)``, refusing a CUDA device that this machine does not have."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f'--device {name}: {error}') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'--device {name}: CUDA is not available here (torch.cuda.is_available() '
                             'is False); use --device cpu')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'--device {name}: only {torch.cuda.device_count()} CUDA device(s) here')
    return device


def _positive(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f'must be at least {minimum}, got {value}')
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa score', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('target', type=Path, nargs='?', help='distorted image, or folder of them')
    parser.add_argument('ref', type=Path, nargs='?', help='reference image, or folder of them')
    parser.add_argument('--metric', default='spips',
                        help='pyiqa full-reference metrics, comma-separated, e.g. spips,lpips,dists,psnr,ssim '
                             '(default: spips)')
    parser.add_argument('--out', type=Path, help='CSV of every score, written atomically; a rerun computes only '
                        'what is missing or whose images changed')
    parser.add_argument('--overwrite', action='store_true', help='start fresh: ignore and replace what --out '
                        '(or --out-dir) already holds')
    methods = parser.add_argument_group('several methods against the same references')
    methods.add_argument('--ref', dest='ref_folder', type=Path, metavar='REF_DIR',
                         help='folder of reference images (with --methods)')
    methods.add_argument('--methods', nargs='+', type=Path, metavar='DIR',
                         help='one folder of outputs per method, named after the folder')
    methods.add_argument('--out-dir', type=Path, help='where the per-method CSVs, table.md, table.csv and '
                         'distributions.png go')
    pairing = parser.add_argument_group('pairing folders')
    pairing.add_argument('--match', choices=MATCH_MODES, default='name',
                         help='pair by file name (default) or by stem, so that a.png pairs a.jpg')
    pairing.add_argument('--target-suffix', default='', metavar='SUFFIX',
                         help='cut SUFFIX from the target stems before pairing, e.g. _x4_SR pairs a_x4_SR.png '
                              'with a.png')
    pairing.add_argument('--allow-unmatched', action='store_true',
                         help='score the images that pair and list the others, instead of stopping')
    maps = parser.add_argument_group('quality maps (SPIPS metrics)')
    maps.add_argument('--map', type=Path, help='write the SPIPS quality map as a heat-map PNG with a colour bar '
                      'here (a folder for folders)')
    maps.add_argument('--map-range', type=float, nargs=2, metavar=('LOW', 'HIGH'),
                      help='fixed colour scale for every map, so maps can be compared (default: 0 to each '
                           "map's maximum)")
    maps.add_argument('--map-raw', action='store_true', help='also write each float32 map as .npy next to its PNG')
    run = parser.add_argument_group('running')
    run.add_argument('--device', default='cpu', help="torch device (default: cpu; under torchrun cuda means each "
                     "rank's own GPU)")
    run.add_argument('--batch-size', type=_positive(1), default=16,
                     help='pairs per chunk; same-size pairs of a chunk are batched per metric, up to 2 Mpx a batch (default: 16)')
    run.add_argument('--workers', type=_positive(0), help='DataLoader processes decoding images (default: 2 when '
                     'there is more than one chunk, except on a CPU of 2 cores or fewer; else 0)')
    run.add_argument('--prefetch', type=_positive(1), default=2, help='chunks each worker decodes ahead (default: 2)')
    return parser


def _usage_problem(args) -> str | None:
    """What makes this command line wrong before anything is read, or ``None``."""
    if args.methods is not None or args.ref_folder is not None or args.out_dir is not None:
        if args.target is not None:
            return 'give either TARGET REF or --ref REF_DIR --methods DIR ... --out-dir DIR, not both'
        if args.methods is None or args.ref_folder is None or args.out_dir is None:
            return '--ref, --methods and --out-dir go together'
        if args.out is not None:
            return 'with --methods the scores go to --out-dir (one CSV per method), not --out'
    elif args.ref is None:
        return 'give TARGET and REF (files or folders), or --ref REF_DIR --methods DIR ... --out-dir DIR'
    if (args.map_range is not None or args.map_raw) and args.map is None:
        return '--map-range and --map-raw need --map'
    return None


class _Terminal:
    """Reporter printing score lines on stdout, notes on stderr, and a progress bar only when stderr
    is a terminal, cleared before each line so the two never share a line."""

    def __init__(self, metrics: list[str], print_rows: bool, label: str):
        self.metrics, self.print_rows, self.label = metrics, print_rows, label
        self.bar = None

    def start(self, pending: int, notes: list[str]) -> None:
        for note in notes:
            print(f'{self.label}{note}', file=sys.stderr)
        if self.print_rows and len(self.metrics) > 1:
            print('\t'.join(['name', *self.metrics]))
        self.bar = tqdm(total=pending, disable=not sys.stderr.isatty() or pending < 2, leave=False,
                        desc=self.label.rstrip(': ') or ','.join(self.metrics), unit='pair', file=sys.stderr)

    def row(self, name: str, values: dict[str, float]) -> None:
        if self.print_rows:
            tqdm.write('\t'.join([name, *(f'{values[m]:.6f}' for m in self.metrics)]), file=sys.stdout)

    def advance(self, pairs: int) -> None:
        self.bar.update(pairs)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(args, metrics: list[str], info: DistInfo) -> None:
    from spips_pyiqa.evaluation.folder_scoring import score_folders
    from spips_pyiqa.evaluation.quality_maps import MapOptions

    device = local_device(checked_device(args.device), info)
    maps = None if args.map is None else MapOptions(args.map, value_range=args.map_range and tuple(args.map_range),
                                                    raw=args.map_raw)
    options = dict(overwrite=args.overwrite, match=args.match, target_suffix=args.target_suffix,
                   allow_unmatched=args.allow_unmatched, device=device, batch_size=args.batch_size,
                   workers=args.workers, prefetch=args.prefetch, info=info)
    if args.methods is not None:
        from spips_pyiqa.evaluation.method_comparison import compare_methods  # scipy: 0.3-0.7 s to import

        comparison = compare_methods(args.ref_folder, args.methods, metrics, args.out_dir, maps=maps,
                                     reporter_for=lambda name: _Terminal(metrics, False, f'{name}: '), **options)
        if info.is_main:
            print(comparison.markdown(), end="")
        return
    result = score_folders(args.target, args.ref, metrics, out=args.out, maps=maps,
                           reporter=_Terminal(metrics, True, ''), **options)
    if info.is_main and len(result.pairs) > 1:
        print('\t'.join(['mean', *(f'{result.mean(m):.6f}' for m in metrics)]))


def cli(argv: list[str]) -> int:
    args = parse_or_exit_code(_parser(), argv)
    if isinstance(args, int):
        return args
    problem = _usage_problem(args)
    metrics = []
    if problem is None:
        from spips_pyiqa.evaluation.fr_metrics import UnknownMetricError, check_fr_metrics

        try:
            metrics = check_fr_metrics(args.metric.split(','))
        except UnknownMetricError as error:
            problem = f'--metric: {error}'
    if problem is not None:
        print(f'error: {problem}', file=sys.stderr)
        return 2
    from spips_pyiqa.evaluation.quality_maps import MapOptionsError
    from spips_pyiqa.evaluation.output_guard import OutputOverInputError

    info, error, status = DistInfo(), None, 0
    try:
        info = init_distributed('gloo')
        _run(args, metrics, info)
    except (MapOptionsError, OutputOverInputError) as raised:
        error, status = str(raised), 2
    except (ValueError, TypeError, RuntimeError, OSError) as raised:
        error, status = str(raised), 1
    finally:
        close_distributed(wait=error is None)
    if error is not None and info.is_main:
        print(f'error: {error}', file=sys.stderr)
    return status
