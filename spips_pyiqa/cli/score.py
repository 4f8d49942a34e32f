"""``python -m spips_pyiqa score TARGET REF``: SPIPS of image files or of folders paired by name.

Prints one ``name<TAB>score`` line per pair in name order (and the mean for folders); ``--map``
writes the fused quality map as a heat-map PNG (a folder of them, ``<target stem>.png``, when
scoring folders or when ``--map`` is an existing folder). Images are read with
:func:`~spips_pyiqa.data.image_io.load_image` (EXIF orientation applied, 16-bit at full precision).
Errors (unreadable image, size mismatch, unpaired names, unavailable device, missing weights, bad
checkpoint) print one line and exit with status 1.

At scale: pairs are decoded by a DataLoader (``--workers`` processes, ``--prefetch`` chunks ahead)
in chunks of ``--batch-size`` pairs, and the pairs of a chunk that share a size are scored as one
batch. ``--out scores.csv`` keeps the scores (columns ``name,score,metric,target,ref``; scores to
float32 precision): rows are journaled durably while the run goes (``scores.csv.partial``) and the
complete file replaces ``scores.csv`` atomically at the end; a rerun with the same ``--out`` skips
the pairs already there (with ``--map``: whose map also exists) and prints every line as a fresh run
would. Under ``torchrun --nproc_per_node=N -m spips_pyiqa score ...`` chunks are dealt round-robin
to the ranks (:mod:`spips_pyiqa.utils.distributed`, gloo), each rank writes its own maps, and rank
0 alone prints and writes ``--out``: the same lines, in the same order, as one process.
"""

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from spips_pyiqa.data.image_io import IMAGE_SUFFIXES, save_heat_map
from spips_pyiqa.data.pair_loader import LoadedPair, PairChunks, chunk_loader, same_size_groups
from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS
from spips_pyiqa.utils.distributed import (
    DistInfo,
    chunk_rounds,
    close_distributed,
    gather_from_ranks,
    init_distributed,
    local_device,
)
from spips_pyiqa.utils.journal import CsvJournal

CSV_COLUMNS = ['name', 'score', 'metric', 'target', 'ref']


def _image_names(folder: Path) -> set:
    return {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def image_pairs(target: Path, ref: Path) -> list[tuple[Path, Path]]:
    """The (target, ref) pairs to score: the two files, or same-named images of two folders."""
    if target.is_dir() != ref.is_dir():
        raise ValueError(f'TARGET and REF must both be files or both folders: {target}, {ref}')
    if not target.is_dir():
        return [(target, ref)]
    names = {target: _image_names(target), ref: _image_names(ref)}
    unpaired = [
        f'only in {folder}: ' + ', '.join(sorted(only)[:5]) + (f' (+{len(only) - 5} more)' if len(only) > 5 else '')
        for folder, only in ((target, names[target] - names[ref]), (ref, names[ref] - names[target]))
        if only
    ]
    if unpaired:
        raise ValueError(
            f'images are paired by file name, but {"; ".join(unpaired)}: rename or remove them so both '
            'folders hold the same names'
        )
    if not names[target]:
        raise ValueError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {target}')
    stems = [Path(name).stem for name in names[target]]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:  # their quality maps would overwrite each other
        raise ValueError(f'several images of {target} share a stem ({", ".join(clashes)}): rename them')
    return [(target / name, ref / name) for name in sorted(names[target])]


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
    parser.add_argument('target', type=Path, help='distorted image, or folder of them')
    parser.add_argument('ref', type=Path, help='reference image, or folder with the same names')
    parser.add_argument('--metric', default='spips', choices=list(SPIPS_METRIC_CONFIGS),
                        help='SPIPS variant (default: spips, AlexNet)')
    parser.add_argument('--map', type=Path, help='write the quality map PNG here (a folder for folders)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu; under torchrun '
                        'cuda means each rank\'s own GPU)')
    parser.add_argument('--out', type=Path, help='CSV of the scores, written atomically; a rerun skips '
                        'the pairs already in it')
    parser.add_argument('--batch-size', type=_positive(1), default=16,
                        help='pairs per chunk; same-size pairs of a chunk are one batch (default: 16)')
    parser.add_argument('--workers', type=_positive(0), help='DataLoader processes decoding images '
                        '(default: 2 when there is more than one chunk, else 0)')
    parser.add_argument('--prefetch', type=_positive(1), default=2,
                        help='chunks each worker decodes ahead (default: 2)')
    return parser


@dataclass(frozen=True, order=True)
class Outcome:
    """The result of pair ``index``: its score, or the one-line error that stops the run."""

    index: int
    score: float | None = None
    error: str | None = None


def _map_path(args, pairs, index: int) -> Path | None:
    if args.map is None:
        return None
    into_folder = len(pairs) > 1 or args.map.is_dir()
    return args.map / f'{pairs[index][0].stem}.png' if into_folder else args.map


def _scored(metric, group: list[LoadedPair], with_map: bool) -> list[tuple[float, torch.Tensor | None]]:
    """Scores (and maps) of same-size pairs, as one batch."""
    target = torch.cat([pair.target for pair in group])
    ref = torch.cat([pair.ref for pair in group])
    with torch.no_grad():
        result = metric(target, ref, return_map=True) if with_map else (metric(target, ref), None)
    scores, maps = result
    scores = scores.reshape(-1).tolist()
    return [(score, None if maps is None else maps[i : i + 1]) for i, score in enumerate(scores)]


def _score_chunk(metric, chunk: list[LoadedPair], pairs, args) -> list[Outcome]:
    """An :class:`Outcome` per pair of ``chunk``; a refused group is retried pair by pair to name it."""
    outcomes = [Outcome(pair.index, error=pair.error) for pair in chunk if pair.error is not None]
    for group in same_size_groups(chunk):
        try:
            results = _scored(metric, group, args.map is not None)
        except ValueError as error:  # sizes: name the files, not only the arguments
            if len(group) > 1:
                results = None
            else:
                target_path, ref_path = pairs[group[0].index]
                outcomes.append(Outcome(group[0].index, error=f'{target_path} vs {ref_path}: {error}'))
                continue
        if results is None:
            for pair in group:
                outcomes += _score_chunk(metric, [pair], pairs, args)
            continue
        for pair, (score, quality_map) in zip(group, results):
            if quality_map is not None:
                save_heat_map(quality_map, _map_path(args, pairs, pair.index))
            outcomes.append(Outcome(pair.index, score))
    return sorted(outcomes)


def _csv_row(pairs, index: int, score: float, metric: str) -> list[str]:
    target, ref = pairs[index]
    return [target.name, f'{score:.9g}', metric, str(target.resolve()), str(ref.resolve())]


def _scores_in(journal: CsvJournal, pairs, args) -> dict[int, float]:
    """Scores ``--out`` (and its journal) already hold for these pairs; refuses other files' rows."""
    where = {(str(t.resolve()), str(r.resolve())): i for i, (t, r) in enumerate(pairs)}
    done = {}
    for row in journal.read():
        if row['metric'] != args.metric:
            raise ValueError(f'{journal.path} holds {row["metric"]} scores, not {args.metric}: '
                             'choose another --out or remove it')
        index = where.get((row['target'], row['ref']))
        if index is None:
            raise ValueError(f'{journal.path} holds scores of other pairs ({row["target"]} vs {row["ref"]}): '
                             'choose another --out or remove it')
        try:
            done[index] = float(row['score'])
        except ValueError:
            raise ValueError(f'{journal.path}: bad score {row["score"]!r} for {row["name"]}') from None
        if not math.isfinite(done[index]):
            raise ValueError(f'{journal.path}: bad score {row["score"]!r} for {row["name"]}')
    return done


class _Report:
    """Rank 0's output: lines in pair order as soon as all earlier pairs are known, journal rows."""

    def __init__(self, pairs, scores: dict[int, float], journal: CsvJournal | None, metric: str):
        self.pairs, self.scores, self.journal, self.metric = pairs, dict(scores), journal, metric
        self.next = 0

    def add(self, outcomes: list[Outcome]) -> str | None:
        """Record one round's outcomes; print what is ready; return the first error in pair order."""
        errors = {o.index: o.error for o in outcomes if o.error is not None}
        fresh = [o for o in outcomes if o.error is None]
        self.scores.update((o.index, o.score) for o in fresh)
        if self.journal is not None:
            self.journal.append([_csv_row(self.pairs, o.index, o.score, self.metric) for o in fresh])
        while self.next < len(self.pairs):
            if self.next in errors:
                return errors[self.next]
            if self.next not in self.scores:
                break
            print(f'{self.pairs[self.next][0].name}\t{self.scores[self.next]:.6f}')
            self.next += 1
        return min(errors.items())[1] if errors else None

    def finish(self) -> None:
        self.add([])  # lines of reused scores after the last round (or of a run with nothing left)
        if len(self.pairs) > 1:
            print(f'mean\t{sum(self.scores.values()) / len(self.scores):.6f}')
        if self.journal is not None:
            order = range(len(self.pairs))
            self.journal.finish([_csv_row(self.pairs, i, self.scores[i], self.metric) for i in order])


def _run(args, info: DistInfo) -> str | None:
    """Score every pair; return the first error in pair order (``None`` when all are scored)."""
    import pyiqa

    from spips_pyiqa import register

    register()
    pairs = image_pairs(args.target, args.ref)
    device = local_device(checked_device(args.device), info)
    journal = None if args.out is None else CsvJournal(args.out, CSV_COLUMNS)
    done = {} if journal is None else _scores_in(journal, pairs, args)
    pending = [i for i in range(len(pairs))
               if i not in done or (args.map is not None and not _map_path(args, pairs, i).is_file())]
    metric = pyiqa.create_metric(args.metric, device=device)
    chunks = [pending[start : start + args.batch_size] for start in range(0, len(pending), args.batch_size)]
    rounds = chunk_rounds(len(chunks), info)
    mine = [k for k in rounds if k is not None]
    workers = args.workers if args.workers is not None else (2 if len(mine) > 1 else 0)
    batches = iter(chunk_loader(PairChunks(pairs, chunks), mine, workers, args.prefetch))
    report = _Report(pairs, {i: s for i, s in done.items() if i not in pending}, journal, args.metric)
    if info.is_main and len(pending) < len(pairs):
        print(f'resuming: {len(pairs) - len(pending)} of {len(pairs)} pairs already in {args.out}',
              file=sys.stderr)
    progress = tqdm(total=len(pending), disable=len(pairs) == 1 or not info.is_main, desc=args.metric,
                    unit='pair', file=sys.stderr)
    with progress:
        for k in rounds:
            outcomes = [] if k is None else _score_chunk(metric, next(batches), pairs, args)
            merged = sorted(o for rank_outcomes in gather_from_ranks(outcomes, info) for o in rank_outcomes)
            progress.update(len(merged))
            error = report.add(merged) if info.is_main else next((o.error for o in merged if o.error), None)
            if error is not None:
                return error
    if info.is_main:
        report.finish()
    return None


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    info = DistInfo()
    error = None
    try:
        info = init_distributed('gloo')
        error = _run(args, info)
    except (ValueError, TypeError, RuntimeError, OSError) as raised:
        error = str(raised)
    finally:
        close_distributed(wait=error is None)
    if error is not None:
        if info.is_main:
            print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
