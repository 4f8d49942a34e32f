"""python -m spips_pyiqa benchmark --out benchmark_results/: regenerate every benchmark result.

Sections (all by default; ``--only`` picks some, comma-separated):

* ``agreement``: PLCC (after the VQEG logistic fit) / SRCC / KRCC with DMOS on ``live_dev``
  (``--live-dev``, a 39-image subset of LIVE; skipped with a message when absent), overall and per
  distortion type, every metric side by side; BAPPS 2AFC / JND per category when ``--bapps ROOT``
  is given (through :mod:`spips_pyiqa.evaluation.bapps`). See :mod:`spips_pyiqa.benchmark.agreement`.
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
* ``scoring`` (only with ``--only scoring``: it writes ``--scoring-pairs`` pairs per size and runs
  both tools several times): ``python -m spips_pyiqa score`` vs pyiqa's command line on 512 px and
  2K pairs, 1 and 2 processes, pairs/s of the whole process and where the time goes (start-up,
  decoding, metric, writing). See :mod:`spips_pyiqa.benchmark.scoring`.
* ``objective`` (only with ``--only objective``: it runs gradient descent for every metric, minutes on
  CPU): the reference-recovery test of Ding et al. (IJCV 2021): each metric (SPIPS variants, lpips,
  lpips-vgg, dists, ssim, ms_ssim, psnr) minimised over the pixels of scikit-image photographs from
  noisy, blurred, JPEG and blurred+noisy starts; final PSNR/SSIM to the reference and every metric's value
  of the results, PSNR curves and the recovered images. See :mod:`spips_pyiqa.benchmark.objective`.
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
table found there and ``README.md`` lists them with the command and module that make each. Metric scores are cached per metric under ``--cache`` (default
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
from spips_pyiqa.cli.arguments import command_parser, fail, parse_or_exit_code, usage_error
from spips_pyiqa.metric_configs import LABEL_FREE_SUFFIX, VARIANTS

SECTIONS = ('agreement', 'human-heads', 'speed', 'figures', 'leaderboard', 'typical', 'scale', 'scoring', 'objective')
#: Sections run when --only is not given (scale and scoring write thousands of images and run torchrun, objective runs
#: minutes of gradient descent: asked for by name).
#: Parts of the speed section (``--speed-parts``).
SPEED_PARTS = ('tables', 'compile', 'profile')
DEFAULT_SECTIONS = ('agreement', 'human-heads', 'speed', 'figures', 'leaderboard', 'typical')
#: The SPIPS variants compared with the baselines: those with human-trained heads, each with its label-free twin.
SPIPS_METRICS = tuple(n for n, v in VARIANTS.items() if v.human_trained)
SPIPS_METRICS += tuple(n + LABEL_FREE_SUFFIX for n in SPIPS_METRICS)
#: Default of --live-dev: the shared data folder beside the repository, seen from its root.
LIVE_DEV = Path('..', 'shared', 'data', 'live_dev')
#: The folders the human-heads section learns from (live_dev + live_jpeg_dev), relative like LIVE_DEV.
HUMAN_DATA_FOLDERS = [LIVE_DEV, Path('..', 'shared', 'data', 'live_jpeg_dev')]
BASELINES = ('psnr', 'ssim', 'ms_ssim', 'vif', 'lpips', 'lpips-vgg', 'dists')
DEFAULT_METRICS = SPIPS_METRICS + BASELINES
#: Order of the Markdown files in RESULTS.md (then any others, alphabetically).
RESULT_ORDER = (
    'agreement_live_dev', 'agreement_live_dev_per_distortion', 'human_heads_cv', 'human_heads_per_scene',
    'human_heads_candidates', 'leaderboard_live_17_scenes',
    'default_heads', 'agreement_bapps', 'typical_values',
    'speed_cpu', 'speed_cpu_targets', 'memory_cpu', 'compile_cpu', 'speed_spips_components', 'speed_spips_profile',
    'speed_compiled_profile',
    'speed_cuda', 'speed_cuda_targets', 'memory_cuda', 'scale_training', 'scale_training_profile', 'scale_training_ops',
    'scale_scoring', 'scoring_throughput', 'objective_ranking', 'objective',
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


def cpu_name(cpuinfo: str = '/proc/cpuinfo') -> str:
    """The CPU's model name with its family and model numbers (``AMD EPYC (family 26, model 2)``):
    the name alone does not tell Zen 4 from Zen 5, whose speed ratios differ (``backbone_layout``)."""
    fields = {}
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                key, _, value = line.partition(':')
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get('model name') or platform.processor() or platform.machine()
    numbers = [f'{label} {fields[key]}' for key, label in (('cpu family', 'family'), ('model', 'model')) if fields.get(key)]
    return f'{name} ({", ".join(numbers)})' if numbers else name


def environment() -> str:
    """One line: machine, threads, load, versions, date (stated under every speed table)."""
    import pyiqa

    cpu = cpu_name()
    load = ' / '.join(f'{x:.2f}' for x in os.getloadavg())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'
    return (
        f'Machine: {cpu}, {os.cpu_count()} logical cores, torch CPU kernels {torch.backends.cpu.get_cpu_capability()} '
        '(speed ratios differ between AVX2 and AVX512 hosts and between CPU families), '
        f'torch threads {torch.get_num_threads()}, '
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
        COMPILED,
        cold_compile_table,
        compiler_missing,
        compiled_profile_table,
        component_times,
        profile_table,
        speed_tables,
        target_check,
    )

    devices = [torch.device('cpu')] + ([torch.device('cuda')] if torch.cuda.is_available() else [])
    for device in devices if 'tables' in args.speed_parts else ():
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
    compiled = [name for name in COMPILED if name in metrics]
    if 'compile' in args.speed_parts and compiled and compiler_missing(torch.device('cpu')) is None:
        _write(cold_compile_table(compiled, environment()), args.out, 'compile_cpu')
    if 'profile' in args.speed_parts and 'spips' in metrics:
        reference = metrics['lpips'].metric if 'lpips' in metrics else None
        components = component_times(metrics['spips'].metric, 256, 8, args.repeats, reference)
        _write(components, args.out, 'speed_spips_components')
        profiled = {name: metrics[name].metric for name in ('spips', 'lpips') if name in metrics}
        _write(profile_table(profiled, 256, 8), args.out, 'speed_spips_profile')
        in_order = {name: metrics[name].metric for name in ('lpips', 'spips') if name in metrics}
        if compiler_missing(torch.device('cpu')) is None:
            _write(compiled_profile_table(in_order, 256, 8), args.out, 'speed_compiled_profile')


def run_typical(args, metrics) -> None:
    from spips_pyiqa.benchmark.typical_values import typical_values_table

    _write(typical_values_table({n: m.metric for n, m in metrics.items()}), args.out, 'typical_values')


def run_scale(args) -> None:
    from spips_pyiqa.benchmark.scale import scale_tables

    for stem, table in scale_tables(args.scale_triplets, args.scale_iters, args.scale_pairs, environment(), _say):
        _write(table, args.out, stem)


def run_scoring(args) -> None:
    from spips_pyiqa.benchmark.scoring import scoring_table

    table = scoring_table(args.scoring_pairs, args.scoring_sizes, args.scoring_metrics, environment(), _say)
    _write(table, args.out, 'scoring_throughput')


def run_objective(args) -> None:
    from spips_pyiqa.benchmark.figures import objective_curves_figure, objective_recovered_figure
    from spips_pyiqa.benchmark.objective import one_thread
    from spips_pyiqa.benchmark.objective import run_objective as recovery_test
    from spips_pyiqa.benchmark.objective_report import checkpoint_table, objective_tables
    from spips_pyiqa.benchmark.tables import write_csv

    with one_thread():
        machine = environment()  # states the thread count the run uses
    result = recovery_test(args.objective_metrics, args.objective_photos, args.objective_size, args.objective_steps,
                           say=_say)
    for stem, table in objective_tables(result, machine).items():
        _write(table, args.out, stem)
    _say(f'wrote {write_csv(checkpoint_table(result), args.out, "objective_checkpoints")}')
    figures = args.out / 'figures'
    _say(f'wrote {objective_curves_figure(result, figures / "objective_curves.png")}')
    _say(f'wrote {objective_recovered_figure(result, figures / "objective_recovered.png")}')


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


def _tables(out: Path) -> dict[str, Path]:
    """Every table's Markdown file in ``out``, ``stem -> path``, in :data:`RESULT_ORDER` then by name."""
    tables = {p.stem: p for p in out.glob('*.md') if p.stem not in ('README', 'RESULTS')}
    return {s: tables[s] for s in [s for s in RESULT_ORDER if s in tables] + sorted(set(tables) - set(RESULT_ORDER))}


def write_results_index(out: Path) -> Path:
    """``RESULTS.md``: every table's Markdown in ``out`` (fixed order), then the figures."""
    tables = _tables(out)
    order = list(tables)
    parts = ['# Benchmark results\n', 'Generated by `python -m spips_pyiqa benchmark`; see README.md for '
             'how each number is produced and what it does not show.\n']
    parts += [tables[stem].read_text() for stem in order]
    pictures = sorted((out / 'figures').glob('*.png')) if (out / 'figures').is_dir() else []
    if pictures:
        parts.append('### Figures\n\n' + '\n'.join(f'![{p.stem}](figures/{p.name})' for p in pictures) + '\n')
    path = out / 'RESULTS.md'
    path.write_text('\n'.join(parts))
    return path


#: Where each table comes from: stem prefix -> (the command that writes it, the module that explains it).
TABLE_SOURCES = (
    ('agreement_bapps', '--only agreement --bapps BAPPS_ROOT', 'spips_pyiqa/evaluation/bapps.py'),
    ('agreement_', '--only agreement', 'spips_pyiqa/benchmark/agreement.py'),
    ('default_heads', '--only agreement', 'spips_pyiqa/benchmark/agreement.py'),
    ('human_heads', '--only human-heads', 'spips_pyiqa/benchmark/human_heads_cv.py'),
    ('speed_', '--only speed', 'spips_pyiqa/benchmark/speed.py'),
    ('memory_', '--only speed', 'spips_pyiqa/benchmark/speed.py'),
    ('compile_', '--only speed', 'spips_pyiqa/benchmark/speed.py'),
    ('scale_', '--only scale', 'spips_pyiqa/benchmark/scale.py'),
    ('scoring_', '--only scoring', 'spips_pyiqa/benchmark/scoring.py'),
    ('typical_values', '--only typical', 'spips_pyiqa/benchmark/typical_values.py'),
    ('objective', '--only objective', 'spips_pyiqa/benchmark/objective.py'),
    ('leaderboard_', '--pyiqa-datasets NAME ... --data-root DIR', 'spips_pyiqa/benchmark/leaderboard.py'),
    ('numerics', 'python -m spips_pyiqa.benchmark.numerics', 'spips_pyiqa/benchmark/numerics.py'),
    ('mutation', 'make mutation', 'tests/mutation/deliberate_bugs.py'),
)


def _source(stem: str) -> tuple[str, str]:
    """(command that writes table ``stem``, module that explains it); empty strings when unknown."""
    for prefix, command, module in TABLE_SOURCES:
        if stem.startswith(prefix):
            return (f'benchmark {command}' if command.startswith('--') else command), module
    return '', ''


def _title(path: Path) -> str:
    first = path.read_text().split('\n', 1)[0]
    return first.lstrip('#').strip() if first.startswith('#') else path.stem


def readme_text(out: Path) -> str:
    """The text of ``out/README.md``: how to regenerate, then one line per table found in ``out``."""
    lines = [
        '# Benchmark results', '',
        'Written by `python -m spips_pyiqa benchmark --out benchmark_results/` (this file included: do not edit it '
        'by hand). Each table is a `.md` and a `.csv` (raw values, notes as `#` lines); the notes above each table '
        'say what data, machine, load and run it comes from, and the module named below explains how its numbers '
        'are produced. [`RESULTS.md`](RESULTS.md) collects every table and figure of the last runs.', '',
        '`benchmark --only X` stands for `python -m spips_pyiqa benchmark --out benchmark_results/ --only X`.', '',
        '| table | what | written by | how |', '|---|---|---|---|',
    ]
    for stem, path in _tables(out).items():
        command, module = (f'`{text}`' if text else '' for text in _source(stem))
        lines.append(f'| [`{stem}`]({path.name}) | {_title(path)} | {command} | {module} |')
    lines += [
        '', 'What these tables do not show:', '',
        '- Human-judgment tables rest on the data sets named in their notes; small sets have wide intervals '
        '(given in the tables), so differences inside them are not evidence of a better metric.',
        '- Which heads each SPIPS row uses is in the table notes (each checkpoint\'s provenance); none is the '
        'paper\'s BAPPS-trained model unless its provenance says so.',
        '- Times come from the machine and load stated above each table; on a shared machine they move between '
        'runs. Regenerate on a quiet machine before quoting them.', '',
    ]
    return '\n'.join(lines)


def write_readme(out: Path) -> Path:
    """Write :func:`readme_text` to ``out/README.md``."""
    path = out / 'README.md'
    path.write_text(readme_text(out))
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
    from spips_pyiqa.benchmark.leaderboard import LEADERBOARD_METRICS
    from spips_pyiqa.benchmark.objective import PHOTOS as OBJECTIVE_PHOTOS
    from spips_pyiqa.benchmark.objective import SIZE as OBJECTIVE_SIZE
    from spips_pyiqa.benchmark.objective import STEPS as OBJECTIVE_STEPS
    from spips_pyiqa.benchmark.scoring import SIZES
    from spips_pyiqa.data.distortions import PHOTOS

    parser = command_parser('benchmark', __doc__)
    parser.add_argument('--out', type=Path, default=Path('benchmark_results'),
                        help='folder of the tables (CSV + Markdown), figures and RESULTS.md (default: %(default)s)')
    parser.add_argument('--cache', type=Path, help='score cache (default: OUT/cache)')
    parser.add_argument('--no-cache', action='store_true', help='recompute every score')
    parser.add_argument('--only', type=lambda t: _names(t, SECTIONS, 'section'),
                        help=f'comma-separated sections of {",".join(SECTIONS)} (default: '
                        f'{",".join(DEFAULT_SECTIONS)}; only leaderboard when --pyiqa-datasets is given)')
    parser.add_argument('--metrics', type=lambda t: _names(t, None, 'metric'),
                        help=f'comma-separated pyiqa metric names (default: {",".join(DEFAULT_METRICS)}; '
                        f'for the leaderboard alone: {",".join(LEADERBOARD_METRICS)})')
    parser.add_argument('--live-dev', type=Path, default=LIVE_DEV,
                        help='folder of the LIVE subset live_dev (scores.csv and images), relative to the working '
                        'folder (default: %(default)s, beside a checkout of this repository); skipped when absent')
    parser.add_argument('--human-data', type=Path, nargs='+', default=HUMAN_DATA_FOLDERS,
                        help='human-scored folders the human-heads section learns from (default: %(default)s)')
    parser.add_argument('--bapps', type=Path, help='BAPPS root prepared by prepare-bapps (optional)')
    parser.add_argument('--repeats', type=int, default=5, help='timed repetitions per setting')
    parser.add_argument('--no-memory', action='store_true', help='skip the memory subprocesses')
    parser.add_argument('--speed-parts', type=lambda t: _names(t, SPEED_PARTS, 'speed part'), default=list(SPEED_PARTS),
                        help='speed: which parts to run, comma-separated: tables (speed_*, memory_*), compile '
                             '(compile_cpu: cold compilations in subprocesses), profile (speed_spips_components, '
                             'speed_spips_profile, speed_compiled_profile) (default: all)')
    parser.add_argument('--scale-triplets', type=int, default=20_000,
                        help='scale: synthetic 64x64 train triplets (default: %(default)s)')
    parser.add_argument('--scale-iters', type=int, default=60, help='scale: training steps per run (default: %(default)s)')
    parser.add_argument('--scale-pairs', type=int, default=160, help='scale: 256x256 pairs scored (default: %(default)s)')
    parser.add_argument('--scoring-pairs', type=int, default=200,
                        help='scoring: pairs per size (default: %(default)s)')
    parser.add_argument('--scoring-sizes', type=lambda t: _names(t, SIZES, 'size'), default=list(SIZES),
                        help=f'scoring: comma-separated sizes of {",".join(SIZES)} (default: %(default)s)')
    parser.add_argument('--scoring-metrics', type=lambda t: _names(t, None, 'metric'), default=['spips'],
                        help='scoring: comma-separated pyiqa metrics both tools compute (default: spips)')
    parser.add_argument('--objective-metrics', type=lambda t: _names(t, None, 'metric'),
                        help='objective: comma-separated pyiqa metrics to minimise (default: the SPIPS variants, '
                        'their label-free twins where the default heads differ, lpips, lpips-vgg, dists, ssim, '
                        'ms_ssim, psnr)')
    parser.add_argument('--objective-photos', type=lambda t: _names(t, PHOTOS, 'photograph'),
                        default=','.join(OBJECTIVE_PHOTOS),
                        help=f'objective: comma-separated scikit-image photographs of {",".join(PHOTOS)} '
                        '(default: %(default)s)')
    parser.add_argument('--objective-size', type=int, default=OBJECTIVE_SIZE,
                        help='objective: side of the square images in px, at least 64; pyiqa\'s ms_ssim needs 176 '
                        '(default: %(default)s)')
    parser.add_argument('--objective-steps', type=int, default=OBJECTIVE_STEPS,
                        help='objective: Adam steps per metric (default: %(default)s)')
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
    """Entry point of benchmark: 0 done, 2 bad command line, 1 missing weights or unusable data/output."""
    from spips_pyiqa.data.mos_prepare import MosDataError
    from spips_pyiqa.data.pyiqa_datasets import fr_dataset_names
    from spips_pyiqa.evaluation.fr_metrics import UnknownMetricError, check_fr_metrics
    from spips_pyiqa.utils.weights import FetchError, MissingWeightsError, use_private_hub

    parser = _parser()
    args = parse_or_exit_code(parser, argv)
    if isinstance(args, int):
        return args
    try:
        check_fr_metrics([*(args.metrics or ()), *args.scoring_metrics, *(args.objective_metrics or ())])
    except UnknownMetricError as error:
        return usage_error(parser, f'--metrics: {error}')
    unknown = [n for n in args.pyiqa_datasets if n not in fr_dataset_names()]
    if unknown:
        return usage_error(parser, f'--pyiqa-datasets: not a pyiqa full-reference data set: {", ".join(unknown)} '
                                   f'(one of: {", ".join(fr_dataset_names())})')
    try:  # pyiqa's lpips/dists need torchvision-named files: never in the user's torch hub
        _say(f'weights: torch and pyiqa use the private hub {use_private_hub()}')
        _run(args)
    except (FetchError, MissingWeightsError, MosDataError, OSError) as error:
        return fail(error)
    return 0


def _run(args) -> None:
    """Every section of ``args.only`` (default: :data:`DEFAULT_SECTIONS`), then RESULTS.md."""
    from spips_pyiqa.benchmark.cache import ScoreCache
    from spips_pyiqa.benchmark.leaderboard import LEADERBOARD_METRICS

    args.only = args.only or (['leaderboard'] if args.pyiqa_datasets else list(DEFAULT_SECTIONS))
    args.metrics = args.metrics or list(LEADERBOARD_METRICS if args.only == ['leaderboard'] else DEFAULT_METRICS)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = ScoreCache(None if args.no_cache else (args.cache or args.out / 'cache'))
    names = list(dict.fromkeys(args.metrics))
    if 'speed' in args.only and 'lpips' not in names:
        names.append('lpips')  # the reference of every speed ratio
        _say('speed: lpips added as the reference of the speed ratios')
    start = time.perf_counter()
    metrics = load_metrics(names) if set(args.only) - {'scale', 'scoring', 'objective'} else {}
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
    if 'scoring' in args.only:
        run_scoring(args)
    if 'objective' in args.only:
        run_objective(args)
    _say(f'wrote {write_readme(args.out)}')
    _say(f'wrote {write_results_index(args.out)} ({time.perf_counter() - start:.0f} s)')
