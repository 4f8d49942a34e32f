"""``python -m spips_pyiqa benchmark --out benchmark_results/``: regenerate every benchmark result.

Sections (all by default; ``--only`` picks some, comma-separated):

* ``agreement``: PLCC (after the VQEG logistic fit) / SRCC / KRCC with DMOS on ``live_dev``
  (``../shared/data/live_dev``, 39 LIVE images; skipped with a message when absent), overall and per
  distortion type, every metric side by side; BAPPS 2AFC / JND per category when ``--bapps ROOT``
  is given (through ``spips_pyiqa.cli.evaluate``). See :mod:`spips_pyiqa.benchmark.agreement`.
* ``human-heads``: the leaderboard protocol (grouped scene folds, pooled SRCC and plain PLCC,
  distortion folds, bootstrap over scenes, nested estimate) for heads trained on the DMOS of
  live_dev + live_jpeg_dev (``--human-data``), with the candidate recipes and training curves.
  See :mod:`spips_pyiqa.benchmark.human_heads_cv`.
* ``speed``: images/second and peak memory at 64 px (batch 50), 256 px (batch 8) and 1024 px
  (batch 1) on CPU (and CUDA when available), relative to pyiqa's ``lpips``; for ``spips`` also
  the time of its parts and a torch.profiler operator table. See
  :mod:`spips_pyiqa.benchmark.speed`.
* ``scale`` (only with ``--only scale``: it generates a 20k-triplet set and takes minutes): training
  triplets/s of pyiqa's loop on a synthetic BAPPS-scale set, 1 vs 2 processes under torchrun,
  extrapolated to one BAPPS epoch, with a profile of a step; scoring pairs/s, 1 vs 2 processes.
  See :mod:`spips_pyiqa.benchmark.scale`.
* ``figures``: SPIPS quality maps of a few real pairs per variant, and score-vs-DMOS scatters. See
  :mod:`spips_pyiqa.benchmark.figures`.
* ``typical``: each metric's median score for JPEG, blur and noise of two severities on the
  scikit-image photographs, so users know what a value means. See
  :mod:`spips_pyiqa.benchmark.typical_values`.
* ``leaderboard``: with ``--pyiqa-datasets live csiq ... --data-root ./datasets``, rows in pyiqa's
  ``FR_benchmark_results.csv`` format for pyiqa's full-reference data sets (the only section run
  when ``--pyiqa-datasets`` is given without ``--only``; default metrics: the SPIPS variants,
  lpips, dists, psnr, ssim). See :mod:`spips_pyiqa.benchmark.leaderboard`.

Tables are written as CSV (raw values) and Markdown into ``--out``; ``RESULTS.md`` collects every
table found there. Metric scores are cached per metric under ``--cache`` (default
``OUT/cache``), keyed by the metric's weights, code and data (:mod:`spips_pyiqa.benchmark.cache`), so
a rerun after adding a metric scores only that metric. Every metric runs in the private torch hub
of :func:`spips_pyiqa.utils.weights.use_private_hub` (pyiqa's ``lpips`` and ``dists`` need
torchvision-named backbone files, which are never written into the user's hub).
"""

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from spips_pyiqa.benchmark.tables import Table, write_table
from spips_pyiqa.metric_configs import LABEL_FREE_SUFFIX, VARIANTS

SECTIONS = ('agreement', 'human-heads', 'speed', 'figures', 'leaderboard', 'typical', 'scale')
#: Sections run when --only is not given (scale writes a 20,000-triplet set and runs torchrun: asked for by name).
DEFAULT_SECTIONS = ('agreement', 'human-heads', 'speed', 'figures', 'leaderboard', 'typical')
#: The SPIPS variants compared with the baselines: those with human-trained heads, each with its label-free twin.
SPIPS_METRICS = tuple(n for n, v in VARIANTS.items() if v.human_trained)
SPIPS_METRICS += tuple(n + LABEL_FREE_SUFFIX for n in SPIPS_METRICS)
BASELINES = ('psnr', 'ssim', 'ms_ssim', 'vif', 'lpips', 'lpips-vgg', 'dists')
DEFAULT_METRICS = SPIPS_METRICS + BASELINES
#: Order of the Markdown files in RESULTS.md (then any others, alphabetically).
RESULT_ORDER = (
    'agreement_live_dev', 'agreement_live_dev_per_distortion', 'human_heads_cv', 'human_heads_per_scene',
    'human_heads_candidates', 'leaderboard_live_17_scenes',
    'default_heads', 'agreement_bapps', 'typical_values',
    'speed_cpu', 'speed_cpu_targets', 'memory_cpu', 'speed_spips_components', 'speed_spips_profile',
    'speed_cuda', 'speed_cuda_targets', 'memory_cuda', 'scale_training', 'scale_training_profile', 'scale_training_ops',
    'scale_scoring',
)


@dataclass
class BenchMetric:
    """A pyiqa metric with its cache fingerprint (see :func:`benchmark_cache.metric_fingerprint`)."""

    name: str
    metric: torch.nn.Module
    fingerprint: dict[str, str]

    @property
    def lower_better(self) -> bool:
        return bool(self.metric.lower_better)

    @property
    def is_spips(self) -> bool:
        return self.name.startswith('spips')

    @property
    def weights_label(self) -> str:
        """``sha256:<12 hex>`` of the state dict, or ``none`` for metrics without weights."""
        if not self.metric.net.state_dict():
            return 'none'
        return 'sha256:' + self.fingerprint['weights_sha256'][:12]

    def score(self, target: torch.Tensor, ref: torch.Tensor) -> float:
        with torch.no_grad():
            return float(self.metric(target, ref).item())


def load_metrics(names, device: torch.device | None = None) -> dict[str, BenchMetric]:
    """Create each pyiqa metric of ``names`` on ``device`` (default CPU), with its fingerprint."""
    import pyiqa

    from spips_pyiqa import register
    from spips_pyiqa.benchmark.cache import metric_fingerprint

    register()
    metrics = {}
    for name in names:
        metric = pyiqa.create_metric(name, device=device or torch.device('cpu'))
        metrics[name] = BenchMetric(name, metric, metric_fingerprint(name, metric))
    return metrics


def metric_with_heads(name: str, heads: torch.nn.Module, meta: dict) -> BenchMetric:
    """pyiqa SPIPS metric ``name`` with ``heads`` (a QualityHeads) loaded and ``meta`` merged in."""
    import pyiqa

    from spips_pyiqa.benchmark.cache import metric_fingerprint

    metric = pyiqa.create_metric(name, device=torch.device('cpu'))
    metric.net.quality.load_state_dict(heads.state_dict())
    metric.net.meta = {**metric.net.meta, **meta}
    return BenchMetric(name, metric, metric_fingerprint(name, metric))


def environment() -> str:
    """One line: machine, threads, load, versions, date (stated under every speed table)."""
    import pyiqa

    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as handle:
            cpu = next(line.split(':', 1)[1].strip() for line in handle if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    load = ' / '.join(f'{x:.2f}' for x in os.getloadavg())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
    return (
        f'Machine: {cpu}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}, '
        f'GPU {gpu}; load average (1/5/15 min) at start {load}; Python {platform.python_version()}, '
        f'torch {torch.__version__}, pyiqa {pyiqa.__version__}; {time.strftime("%Y-%m-%d %H:%M %Z")}.'
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _write(table: Table, out: Path, stem: str) -> None:
    csv_path, md_path = write_table(table, out, stem)
    _say(f'wrote {md_path} and {csv_path.name}')


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
def _live_dev(args):
    """(dataset, None) or (None, reason)."""
    from spips_pyiqa.benchmark.agreement import load_live_dev

    if not (args.live_dev / 'scores.csv').is_file():
        return None, f'live_dev not found at {args.live_dev} (no scores.csv): live_dev table skipped'
    return load_live_dev(args.live_dev, args.limit), None


def _live_dev_results(args, metrics, cache):
    """(dataset, raw scores, correlations) on live_dev, or None with a printed reason."""
    from spips_pyiqa.benchmark.agreement import held_out_scores, live_dev_correlations, live_dev_scores

    dataset, reason = _live_dev(args)
    if dataset is None:
        _say(reason)
        return None
    scores = held_out_scores(metrics, dataset, live_dev_scores(metrics, dataset, cache))
    lower_better = {name: m.lower_better for name, m in metrics.items()}
    return dataset, scores, live_dev_correlations(scores, lower_better, dataset)


def run_agreement(args, metrics, cache) -> None:
    from spips_pyiqa.benchmark.agreement import bapps_table, fusion_rule_table, live_dev_tables, load_anchors

    results = _live_dev_results(args, metrics, cache)
    if results is not None:
        dataset, _, corr = results
        anchors = load_anchors(args.live_dev.parents[1] / 'README.md') if not args.limit else {}
        overall, per_kind = live_dev_tables(metrics, dataset, corr, anchors)
        _write(overall, args.out, 'agreement_live_dev')
        _write(per_kind, args.out, 'agreement_live_dev_per_distortion')
        mismatches = [r['metric'] for r in overall.rows if r['anchor check'] == 'MISMATCH']
        if mismatches:
            _say(f'WARNING: SRCC differs from the shared/README anchors for {", ".join(mismatches)}')
        if args.limit:
            _say('default_heads table skipped (--limit: candidates are compared on the full set only)')
        elif any(m.is_spips for m in metrics.values()):
            try:
                _write(fusion_rule_table(metrics, dataset, cache, metric_with_heads), args.out, 'default_heads')
            except RuntimeError as error:
                _say(f'default_heads table unavailable: {error}')
    if args.bapps is None:
        _say('BAPPS: not scored (no --bapps ROOT given)')
        return
    try:
        _write(bapps_table(metrics, args.bapps, cache, args.out), args.out, 'agreement_bapps')
    except RuntimeError as error:
        _say(f'BAPPS table unavailable: {error}')
        unavailable = Table('BAPPS val: unavailable', ['reason'], [{'reason': str(error)}])
        _write(unavailable, args.out, 'agreement_bapps')


def run_human_heads(args, metrics, cache) -> None:
    from spips_pyiqa.benchmark.human_heads_cv import write_human_heads_tables

    if args.limit:
        _say('human-heads: skipped with --limit (cross-validation needs every image)')
        return
    for stem, table in write_human_heads_tables(args.human_data, metrics, cache, args.out, _say):
        _write(table, args.out, stem)


def run_speed(args, metrics) -> None:
    from spips_pyiqa.benchmark.speed import (
        component_times,
        profile_table,
        speed_tables,
        target_check,
    )

    devices = [torch.device('cpu')] + ([torch.device('cuda')] if torch.cuda.is_available() else [])
    for device in devices:
        on_device = metrics if device.type == 'cpu' else load_metrics(metrics, device)
        tables, raw = speed_tables({n: m.metric for n, m in on_device.items()}, device,
                                   args.repeats, not args.no_memory, environment())
        _write(tables[0], args.out, f'speed_{device.type}')
        if len(tables) > 1:
            _write(tables[1], args.out, f'memory_{device.type}')
        # the shipped default, and label-free heads, where all seven traditional maps weigh
        lines = [line for name in ('spips', 'spips-label-free') for line in target_check(raw, name)]
        if lines:
            targets = Table(f'SPIPS speed targets on {device.type.upper()}', ['check'],
                            [{'check': line} for line in lines])
            _write(targets, args.out, f'speed_{device.type}_targets')
            for line in lines:
                _say(line)
    if 'spips' in metrics:
        reference = metrics['lpips'].metric if 'lpips' in metrics else None
        components = component_times(metrics['spips'].metric, 256, 8, args.repeats, reference)
        _write(components, args.out, 'speed_spips_components')
        _write(profile_table(metrics['spips'].metric, 256, 8), args.out, 'speed_spips_profile')


def run_typical(args, metrics) -> None:
    from spips_pyiqa.benchmark.typical_values import typical_values_table

    _write(typical_values_table({n: m.metric for n, m in metrics.items()}), args.out, 'typical_values')


def run_scale(args) -> None:
    from spips_pyiqa.benchmark.scale import scale_tables

    for stem, table in scale_tables(args.scale_triplets, args.scale_iters, args.scale_pairs, environment(), _say):
        _write(table, args.out, stem)


def run_figures(args, metrics, cache) -> None:
    from spips_pyiqa.benchmark.figures import map_pairs, quality_map_figure, scatter_figure

    figures = args.out / 'figures'
    results = _live_dev_results(args, metrics, cache)
    variants = {n: m.metric for n, m in metrics.items() if m.is_spips}
    if variants:
        for stem, caption, target, ref in map_pairs():
            _say(f'wrote {quality_map_figure(caption, target, ref, variants, figures / f"maps_{stem}.png")}')
    else:
        _say('figures: no SPIPS metric selected, quality-map figures skipped')
    if results is not None:
        dataset, scores, corr = results
        lower_better = {name: m.lower_better for name, m in metrics.items()}
        _say(f'wrote {scatter_figure(scores, lower_better, dataset, corr, figures / "scatter_live_dev.png")}')


def run_leaderboard(args, metrics, cache) -> None:
    from spips_pyiqa.benchmark.leaderboard import leaderboard_table, load_fr_sets, write_leaderboard

    if not args.pyiqa_datasets:
        _say('leaderboard: not scored (no --pyiqa-datasets given)')
        return
    sets = load_fr_sets(args.pyiqa_datasets, args.data_root, _say)
    if not sets:
        _say('leaderboard: no data set found, no table written')
        return
    csv_path, md_path = write_leaderboard(leaderboard_table(metrics, sets, cache, args.logistic_plcc, _say), args.out)
    _say(f'wrote {md_path} and {csv_path.name}')


def write_results_index(out: Path) -> Path:
    """``RESULTS.md``: every table's Markdown in ``out`` (fixed order), then the figures."""
    tables = {p.stem: p for p in out.glob('*.md') if p.stem not in ('README', 'RESULTS')}
    order = [s for s in RESULT_ORDER if s in tables] + sorted(set(tables) - set(RESULT_ORDER))
    parts = ['# Benchmark results\n', 'Generated by `python -m spips_pyiqa benchmark`; see README.md for '
             'how each number is produced and what it does not show.\n']
    parts += [tables[stem].read_text() for stem in order]
    pictures = sorted((out / 'figures').glob('*.png')) if (out / 'figures').is_dir() else []
    if pictures:
        parts.append('### Figures\n\n' + '\n'.join(f'![{p.stem}](figures/{p.name})' for p in pictures) + '\n')
    path = out / 'RESULTS.md'
    path.write_text('\n'.join(parts))
    return path


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def _names(text: str, allowed, what: str) -> list[str]:
    names = [n.strip() for n in text.split(',') if n.strip()]
    unknown = [n for n in names if allowed is not None and n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f'unknown {what}: {", ".join(unknown) or "(none)"}')
    return names


def _parser() -> argparse.ArgumentParser:
    from spips_pyiqa.benchmark.agreement import default_live_dev
    from spips_pyiqa.data.live_dev import default_human_data
    from spips_pyiqa.benchmark.leaderboard import LEADERBOARD_METRICS

    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa benchmark', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', type=Path, default=Path('benchmark_results'))
    parser.add_argument('--cache', type=Path, help='score cache (default: OUT/cache)')
    parser.add_argument('--no-cache', action='store_true', help='recompute every score')
    parser.add_argument('--only', type=lambda t: _names(t, SECTIONS, 'section'),
                        help=f'comma-separated sections of {",".join(SECTIONS)} (default: '
                        f'{",".join(DEFAULT_SECTIONS)}; only leaderboard when --pyiqa-datasets is given)')
    parser.add_argument('--metrics', type=lambda t: _names(t, None, 'metric'),
                        help=f'comma-separated pyiqa metric names (default: {",".join(DEFAULT_METRICS)}; '
                        f'for the leaderboard alone: {",".join(LEADERBOARD_METRICS)})')
    parser.add_argument('--live-dev', type=Path, default=default_live_dev(),
                        help='live_dev folder (default: %(default)s)')
    parser.add_argument('--human-data', type=Path, nargs='+', default=default_human_data(),
                        help='human-scored folders the human-heads section learns from (default: live_dev '
                        'live_jpeg_dev in ../shared/data)')
    parser.add_argument('--bapps', type=Path, help='BAPPS root prepared by prepare-bapps (optional)')
    parser.add_argument('--repeats', type=int, default=5, help='timed repetitions per setting')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--scale-triplets', type=int, default=20_000,
                        help='scale: synthetic 64x64 train triplets (default: %(default)s)')
    parser.add_argument('--scale-iters', type=int, default=60, help='scale: training steps per run (default: %(default)s)')
    parser.add_argument('--scale-pairs', type=int, default=160, help='scale: 256x256 pairs scored (default: %(default)s)')
    parser.add_argument('--limit', type=int, default=0,
                        help='use only this many live_dev images (smoke tests; 0 = all)')
    parser.add_argument('--pyiqa-datasets', nargs='+', metavar='NAME', default=[],
                        help='pyiqa full-reference data sets for the leaderboard (live csiq tid2013 kadid10k ...)')
    parser.add_argument('--data-root', type=Path, default=Path('datasets'),
                        help="folder playing pyiqa's ./datasets (default: %(default)s)")
    parser.add_argument('--logistic-plcc', action='store_true',
                        help="leaderboard PLCC after the VQEG logistic fit (default: plain, pyiqa's protocol)")
    return parser


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    import pyiqa

    from spips_pyiqa import register
    from spips_pyiqa.benchmark.cache import ScoreCache
    from spips_pyiqa.benchmark.leaderboard import LEADERBOARD_METRICS
    from spips_pyiqa.data.pyiqa_datasets import fr_dataset_names
    from spips_pyiqa.utils.weights import FetchError, use_private_hub

    register()
    try:  # pyiqa's lpips/dists need torchvision-named files: never in the user's torch hub
        _say(f'weights: torch and pyiqa use the private hub {use_private_hub()}')
    except FetchError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    args.only = args.only or (['leaderboard'] if args.pyiqa_datasets else list(DEFAULT_SECTIONS))
    args.metrics = args.metrics or list(LEADERBOARD_METRICS if args.only == ['leaderboard'] else DEFAULT_METRICS)
    unknown = [n for n in args.metrics if n not in pyiqa.list_models(metric_mode='FR')]
    if unknown:
        print(f'error: not a pyiqa full-reference metric: {", ".join(unknown)}', file=sys.stderr)
        return 2
    unknown = [n for n in args.pyiqa_datasets if n not in fr_dataset_names()]
    if unknown:
        print(f'error: not a pyiqa full-reference data set: {", ".join(unknown)} '
              f'(one of: {", ".join(fr_dataset_names())})', file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    cache = ScoreCache(None if args.no_cache else (args.cache or args.out / 'cache'))
    names = list(dict.fromkeys(args.metrics))
    if 'speed' in args.only and 'lpips' not in names:
        names.append('lpips')  # the reference of every speed ratio
        _say('speed: lpips added as the reference of the speed ratios')
    start = time.perf_counter()
    metrics = load_metrics(names) if set(args.only) - {'scale'} else {}
    selected = {n: metrics[n] for n in args.metrics if n in metrics}
    if 'agreement' in args.only:
        run_agreement(args, selected, cache)
    if 'human-heads' in args.only:
        run_human_heads(args, selected, cache)
    if 'speed' in args.only:
        run_speed(args, metrics)
    if 'figures' in args.only:
        run_figures(args, selected, cache)
    if 'leaderboard' in args.only:
        run_leaderboard(args, selected, cache)
    if 'typical' in args.only:
        run_typical(args, selected)
    if 'scale' in args.only:
        run_scale(args)
    _say(f'wrote {write_results_index(args.out)} ({time.perf_counter() - start:.0f} s)')
    return 0
