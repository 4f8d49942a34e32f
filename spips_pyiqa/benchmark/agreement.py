r"""Agreement tables of metrics with human judgments: LIVE (``live_dev``) correlations and BAPPS.

The evaluation itself is library code: :mod:`spips_pyiqa.evaluation.mos` (scores and sign-corrected
correlations with DMOS: positive = agrees with people) and :mod:`spips_pyiqa.evaluation.bapps`
(2AFC / JND per category); this module caches scores per metric and lays out the tables.
"""

import re
import shutil
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from spips_pyiqa.evaluation.mos import agreement, pair_scores
from spips_pyiqa.metrics.correlation import Correlations, srcc_interval
from spips_pyiqa.benchmark.cache import ScoreCache, cache_key, files_sha256
from spips_pyiqa.benchmark.tables import Table, read_table_rows, relative_path
from spips_pyiqa.data.live_dev import REPO_ROOT, read_human_data, read_live_dev

__all__ = [
    'LiveDev',
    'bapps_table',
    'fusion_rule_table',
    'live_dev_tables',
    'load_anchors',
    'load_human_data',
    'load_live_dev',
]

# --------------------------------------------------------------------------------------------
# live_dev
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveDev:
    """The ``live_dev`` subset of LIVE: its checked rows (:func:`~spips_pyiqa.data.live_dev.read_live_dev`;
    ``mos`` is DMOS, higher = worse) and a key over the scores file and images."""

    root: Path
    rows: tuple  # of MosRow
    key: str
    name: str = 'live_dev'

    @property
    def items(self) -> list[str]:
        return [row.dist for row in self.rows]

    @property
    def dmos(self) -> np.ndarray:
        return np.array([row.mos for row in self.rows])

    @property
    def distortions(self) -> np.ndarray:
        return np.array([row.distortion for row in self.rows])

    def pair(self, item: str):
        """Paths of (distorted, reference) for an item name (its ``dist_img``)."""
        row = next(row for row in self.rows if row.dist == item)
        return self.root / row.dist, self.root / row.ref


def load_live_dev(root: Path, limit: int = 0) -> LiveDev:
    """Read ``root/scores.csv``; ``limit > 0`` keeps that many rows spread over the distortions.

    Raises:
        MosDataError: no ``scores.csv`` under ``root``, or a row that fails the checks of
            :func:`~spips_pyiqa.data.mos_prepare.read_scores`.
    """
    root = Path(root)
    rows = read_live_dev(root)
    # the key covers every image, so a --limit run shares the full run's cache files
    files = sorted({root / path for r in rows for path in (r.dist, r.ref)})
    key = files_sha256([root / 'scores.csv', *files])
    if limit > 0:  # round-robin over distortion types, so each keeps a few rows
        by_kind: dict[str, list] = {}
        for row in rows:
            by_kind.setdefault(row.distortion, []).append(row)
        columns = [by_kind[k] for k in sorted(by_kind)]
        rows = [r for group in zip(*columns) for r in group][:limit]
    return LiveDev(root, tuple(rows), key)


def load_human_data(roots) -> LiveDev:
    """Several human-scored folders as one :class:`LiveDev` (``read_human_data``: image paths relative
    to their common folder, scenes kept), cached under the name ``live_human``."""
    root, rows = read_human_data(roots)
    files = sorted({root / path for r in rows for path in (r.dist, r.ref)})
    return LiveDev(root, tuple(rows), files_sha256([*(Path(r) / 'scores.csv' for r in roots), *files]), 'live_human')


def load_anchors(readme: Path) -> dict[str, float]:
    """The anchor SRCCs quoted in ``shared/README.md`` (``name 0.123`` after "Anchors")."""
    try:
        text = Path(readme).read_text()
    except OSError:
        return {}
    start = text.find('Anchors')
    if start < 0:
        return {}
    paragraph = text[start:].split('\n\n')[0]
    return {name: float(value) for name, value in re.findall(r'([a-z_][\w-]*) (\d\.\d+)', paragraph)}


def live_dev_scores(metrics, dataset: LiveDev, cache: ScoreCache) -> dict[str, np.ndarray]:
    """Raw scores of every metric (``name -> BenchMetric``) on ``dataset``, through the cache."""
    def computer(metric):
        def compute(items):
            return list(pair_scores(metric.score, [dataset.pair(item) for item in items], f'{dataset.name} {metric.name}'))

        return compute

    out = {}
    for name, metric in metrics.items():
        key = cache_key(metric.fingerprint, dataset.key)
        out[name] = cache.scores(dataset.name, name, key, dataset.items, computer(metric), metric.fingerprint)
    return out


def trained_on_live_dev(metric) -> bool:
    """Whether a metric's weights learned from live_dev's labels (human-trained SPIPS heads)."""
    return 'held_out_predictions' in (getattr(metric.metric.net, 'meta', None) or {}).get('cv', {})


def held_out_scores(metrics, dataset: LiveDev, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``scores`` with, for metrics trained on live_dev, their out-of-fold predictions instead.

    Their in-sample agreement is no evidence; the heads' ``meta['cv']['held_out_predictions']``
    holds each image's score by heads that never saw its scene (nested grouped scene folds,
    :mod:`spips_pyiqa.recipes.human_heads`)."""
    out = dict(scores)
    for name, metric in metrics.items():
        if trained_on_live_dev(metric):
            held_out = metric.metric.net.meta['cv']['held_out_predictions']
            # keys are relative to the folders' common parent (live_dev/dist/...) or to live_dev itself
            out[name] = np.array([held_out.get(item, held_out.get(f'{dataset.root.name}/{item}', np.nan))
                                  for item in dataset.items])
            if np.isnan(out[name]).any():
                raise ValueError(f'{name}: its heads hold no held-out prediction for some {dataset.name} images')
    return out


def live_dev_correlations(scores, lower_better, dataset: LiveDev) -> dict[str, dict[str, Correlations]]:
    """Per metric, per subset (``'all'`` and each distortion type): :class:`Correlations`."""
    return {name: agreement(raw, lower_better[name], dataset.dmos, groups=dataset.distortions)
            for name, raw in scores.items()}


def _plcc_cell(c: Correlations):
    return c.plcc if c.logistic or np.isnan(c.plcc) else f'{c.plcc:.3f}*'


def live_dev_tables(metrics, dataset: LiveDev, corr, anchors: dict[str, float]) -> list[Table]:
    """The overall and per-distortion tables of ``live_dev`` (``corr`` from live_dev_correlations)."""
    n = len(dataset.rows)
    counts = {k: int(np.sum(dataset.distortions == k)) for k in dict.fromkeys(dataset.distortions)}
    data_note = (
        f'Data: {relative_path(dataset.root)} (LIVE Release 2 subset: 3 reference scenes; distortions '
        f'{", ".join(f"{k} n={v}" for k, v in counts.items())}), DMOS from scores.csv, higher = '
        f'worse. **n={n}: a small sample**: see the SRCC 95% interval column (Fisher z, '
        'Fieller et al. 1957); per distortion type the intervals are wider still. Differences '
        'between metrics inside those intervals are not evidence of a better metric.'
    )
    sign_note = (
        'Sign-corrected correlations: scores are turned into distances (higher-better metrics '
        'negated) so that agreement with DMOS is positive. PLCC after the VQEG 4-parameter logistic '
        'fit (`*`: fit unavailable, linear PLCC). SRCC = Spearman, KRCC = Kendall tau-b.'
    )
    provenance = [
        f'Checkpoint of `{name}`: {m.fingerprint["provenance"]} (state-dict sha256 '
        f'{m.fingerprint["weights_sha256"][:12]}).'
        for name, m in metrics.items() if m.is_spips
    ]
    trained_note = (
        'Rows marked `held out` learned from these very labels (human-trained heads): their numbers '
        'are out-of-fold, each image scored by heads that never saw its scene (nested grouped '
        'scene folds, benchmark_results/human_heads_cv.md), never in-sample. Every other row saw no live_dev '
        'label (the label-free heads\' fusion rule was chosen between two candidates on live_dev: '
        'table default_heads).'
    )
    overall = Table(
        title=f'live_dev (LIVE subset, n={n}): agreement with DMOS',
        columns=['metric', 'weights', 'live_dev labels', 'n', 'PLCC', 'SRCC', 'SRCC 95% interval', 'KRCC',
                 'anchor SRCC', 'anchor check'],
        notes=[data_note, sign_note, trained_note, *provenance],
    )
    for name, metric in metrics.items():
        c = corr[name]['all']
        anchor = anchors.get(name)
        check = '' if anchor is None else ('ok' if abs(round(abs(c.srcc), 3) - anchor) <= 0.0015 else 'MISMATCH')
        overall.rows.append({
            'metric': name, 'weights': metric.weights_label,
            'live_dev labels': 'held out' if trained_on_live_dev(metric) else 'not used', 'n': c.n, 'PLCC': _plcc_cell(c),
            'SRCC': c.srcc, 'SRCC 95% interval': '{:.2f} to {:.2f}'.format(*srcc_interval(c.srcc, c.n)),
            'KRCC': c.krcc, 'anchor SRCC': anchor, 'anchor check': check,
        })
    kinds = [k for k in next(iter(corr.values())) if k != 'all']
    per_kind = Table(
        title=f'live_dev (n={n}) per distortion type',
        columns=['metric', *[f'{k} {stat}' for k in kinds for stat in ('SRCC', 'PLCC', 'KRCC')]],
        notes=[data_note, sign_note],
    )
    for name in metrics:
        row = {'metric': name}
        for k in kinds:
            c = corr[name][k]
            row.update({f'{k} SRCC': c.srcc, f'{k} PLCC': _plcc_cell(c), f'{k} KRCC': c.krcc})
        per_kind.rows.append(row)
    return [overall, per_kind]


# --------------------------------------------------------------------------------------------
# BAPPS, through spips_pyiqa.evaluation.bapps
# --------------------------------------------------------------------------------------------
BAPPS_OPTIONS = REPO_ROOT / 'options' / 'test_spips.yml'


def bapps_table(metrics, root: Path, cache: ScoreCache, out_dir: Path) -> Table:
    """2AFC and JND mAP per BAPPS val category for every metric, side by side.

    Each metric is scored by :mod:`spips_pyiqa.evaluation.bapps` (imported here, only when BAPPS is
    asked for) with ``options/test_spips.yml``; its per-metric CSV/Markdown (with PLCC/SRCC/KRCC) is
    cached by metric fingerprint and meta-info hash and copied to ``out_dir``.
    Raises ``RuntimeError`` with the reason when BAPPS cannot be scored.
    """
    from spips_pyiqa.evaluation import bapps as evaluate

    root = Path(root)
    meta = evaluate.default_output_dir(root) / evaluate.META_INFO_NAME
    if not meta.is_file():
        raise RuntimeError(f'no BAPPS meta-info {meta}: {evaluate.PREPARE_HINT}')
    data_key = files_sha256([meta])
    rows_by_metric = {}
    for name, metric in metrics.items():
        folder = cache.root / 'bapps' / cache_key(metric.fingerprint, data_key) if cache.root else out_dir / 'bapps'
        csv_path = folder / f'bapps_{name}.csv'
        if not csv_path.is_file():
            options = evaluate.load_options(BAPPS_OPTIONS, metric=name, bapps_root=root, out=folder)
            try:
                evaluate.write_results(evaluate.evaluate(options), options)
            except ValueError as error:
                raise RuntimeError(f'BAPPS evaluation of {name} failed: {error}') from None
        if folder != out_dir / 'bapps':
            (out_dir / 'bapps').mkdir(parents=True, exist_ok=True)
            for suffix in ('.csv', '.md'):
                shutil.copyfile(csv_path.with_suffix(suffix), out_dir / 'bapps' / f'bapps_{name}{suffix}')
        rows_by_metric[name] = read_table_rows(csv_path)
    first = next(iter(rows_by_metric.values()))
    cells = [(r['task'], r['category'], r['n']) for r in first]
    table = Table(
        title='BAPPS val: 2AFC score and JND mAP (x100) per category',
        columns=['metric', *[f'{task} {category}' for task, category, _ in cells]],
        notes=[
            f'Data: BAPPS at {relative_path(root)} (meta-info {relative_path(meta)}); items per column: '
            + ', '.join(f'{t} {c} n={n}' for t, c, n in cells) + '.',
            'Scored by `python -m spips_pyiqa evaluate` (spips_pyiqa.evaluation.bapps) with '
            '`options/test_spips.yml`; per-metric PLCC/SRCC/KRCC of the preference are in '
            '`bapps/bapps_<metric>.md`.',
        ],
        digits=2,
    )
    for name, rows in rows_by_metric.items():
        row = {'metric': name}
        for r in rows:
            value = r.get('2afc') or r.get('jnd_map')
            row[f'{r["task"]} {r["category"]}'] = float(value) * 100 if value else None
        table.rows.append(row)
    return table


# --------------------------------------------------------------------------------------------
# default heads: the fusion-rule candidates of spips_pyiqa.recipes.label_free_heads on live_dev
# --------------------------------------------------------------------------------------------
def fusion_rule_table(metrics, dataset: LiveDev, cache: ScoreCache, make_metric) -> Table:
    """SRCC/PLCC/KRCC on ``live_dev`` of each SPIPS variant in ``metrics`` under every fusion rule
    of :mod:`spips_pyiqa.recipes.label_free_heads` (its heads with that rule's lambda).

    ``make_metric(name, heads, meta)`` returns a benchmark metric (``name``, ``fingerprint``,
    ``lower_better``, ``score``) of pyiqa metric ``name`` with ``heads`` and ``meta`` in place of the
    shipped ones. A candidate whose weights equal the shipped checkpoint's reuses that row's scores.
    Raises ``RuntimeError`` when ``default_heads`` offers no rules.
    """
    try:
        from spips_pyiqa.recipes import label_free_heads as default_heads
        rules, build = default_heads.FUSION_RULES, default_heads.build_default_heads
        weights_of = lru_cache(maxsize=None)(default_heads.fusion_weights)  # calibration once per net
        provenance_of = default_heads.provenance
    except (ImportError, AttributeError) as error:
        raise RuntimeError(f'spips_pyiqa.recipes.label_free_heads has no fusion-rule candidates ({error})') from None
    table = Table(
        title=f'default_heads: fusion-rule candidates of the shipped SPIPS heads on live_dev (n={len(dataset.rows)})',
        columns=['metric', 'fusion rule', 'lambda', 'shipped', 'PLCC', 'SRCC', 'KRCC'],
        notes=[
            'Each label-free SPIPS variant with the heads of `spips_pyiqa.recipes.label_free_heads` under each '
            'fusion rule (`FUSION_RULES`); `shipped` marks the v0.1 checkpoint in spips_pyiqa/archs/pretrained/ '
            '(the `-label-free` names). Picking the rule by these numbers used live_dev labels: label-free SPIPS '
            'rows on live_dev are optimistic. '
            f'n={len(dataset.rows)}; correlations as in the live_dev table (sign-corrected).',
        ],
    )
    for name, shipped in metrics.items():
        if not (shipped.is_spips and name.endswith('-label-free')):
            continue
        net, groups = shipped.metric.net.net, shipped.metric.net.groups
        for rule in rules:
            try:
                fusion = weights_of(net, rule)
            except Exception as error:  # e.g. a backbone that cannot be built offline
                table.rows.append({'metric': name, 'fusion rule': rule, 'lambda': f'unavailable: {error}'})
                continue
            heads = build(net, groups, fusion)
            kept = list(heads.heads)
            meta = {'provenance': provenance_of(net, rule, fusion, kept)}
            candidate = make_metric(name, heads, meta)
            # Same weights up to float rounding: calibration_means sums in thread-dependent order.
            shipped_heads = shipped.metric.net.quality.state_dict()
            is_shipped = all(
                torch.allclose(value, shipped_heads[key], rtol=0, atol=1e-6)
                for key, value in heads.state_dict().items()
            )
            label = name if is_shipped else f'{name}[fusion={rule}]'
            scorer = shipped if is_shipped else candidate
            scores = live_dev_scores({label: scorer}, dataset, cache)[label]
            c = agreement(scores, shipped.lower_better, dataset.dmos)['all']
            lambdas = heads.fusion.weights.tolist()
            table.rows.append({
                'metric': name, 'fusion rule': rule,
                'lambda': ', '.join(f'{g} {w:.3f}' for g, w in zip(kept, lambdas)),
                'shipped': 'yes' if is_shipped else '', 'PLCC': _plcc_cell(c), 'SRCC': c.srcc, 'KRCC': c.krcc,
            })
    return table
