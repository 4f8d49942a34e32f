"""BAPPS evaluation of any pyiqa full-reference metric (the library behind ``evaluate``).

Scores a full-reference metric of pyiqa's table (``spips``, ``lpips``, ``dists``, ``psnr``,
``ssim``, ``vif``, ...) on the BAPPS validation set and reports, per category:

* 2AFC val (``2afc/val/{traditional,cnn,superres,deblur,color,frameinterp}``): the 2AFC score of the
  LPIPS protocol, and PLCC/SRCC/KRCC between the predicted preference ``d0 - d1`` and the human
  fraction ``h`` preferring ``p1``; ``d0 = metric(p0, ref)``, ``d1 = metric(p1, ref)``.
* JND val (``jnd/val/{traditional,cnn}``): the JND mAP of ``d = metric(p1, p0)`` (JND pairs have no
  reference; ``p0`` plays the reference) against the fraction judging the pair "same".

plus one unweighted ``average`` row per task. Higher-better metrics (PSNR, SSIM, VIF, ...) are
turned into distances by :func:`~spips_pyiqa.metrics.bapps_scores.to_distance` using the metric's
``lower_better`` flag; all numbers come from :mod:`spips_pyiqa.metrics.bapps_scores`.

From Python::

    from spips_pyiqa.evaluation.bapps import evaluate, load_options, write_results

    options = load_options('options/test_spips.yml', metric='lpips', bapps_root='datasets/BAPPS')
    scores = evaluate(options)          # list of CategoryScore, each task ending with 'average'
    write_results(scores, options)      # OUT/bapps_lpips.csv and .md

Data is read by pyiqa's ``BAPPSDataset`` from the meta-info that ``python -m spips_pyiqa
prepare-bapps BAPPS_ROOT`` writes (options from :func:`~spips_pyiqa.data.bapps_prepare.dataset_options`,
one dataset per category through ``val_types``). Results go to ``OUT/bapps_<metric>.csv`` (raw
values) and ``OUT/bapps_<metric>.md`` (x100, as the papers print them); ``OUT`` defaults to
``results/<name>/`` so the rows of several metrics sit side by side.

Options YAML (pyiqa test-option style; see ``options/test_spips.yml``)::

    name: BAPPS_val                  # results/<name>/
    num_gpu: 0                       # 0: CPU, N: CUDA, auto: CUDA when available
    metric:
      name: spips                    # --metric
      pretrained_model_path: ~       # --pretrained-model-path (e.g. a trained SPIPS checkpoint)
    datasets:
      val_2afc:                      # one block per BAPPS task
        type: BAPPSDataset
        dataroot_target: ./datasets/BAPPS   # --bapps-root
        meta_info_dir: ~             # default: <dataroot_target>/meta_info (prepare-bapps' default)
        phase: val
        mode: 2afc                   # 2afc or jnd
        categories: [traditional, cnn, superres, deblur, color, frameinterp]
        batch_size_per_gpu: 50
        num_worker_per_gpu: 0
    path:
      results_root: ~                # --out; default results/<name>

Under ``torchrun`` (``info`` from :func:`~spips_pyiqa.utils.distributed.init_distributed`) each
category's batches are dealt round-robin to the ranks (a batch holds the same items whatever the
number of processes), the distances are gathered in batch order and every rank returns all the
scores: the same numbers as one process.

Errors in the options, a missing BAPPS folder or meta-info, an unknown metric or an unusable
checkpoint raise :class:`EvaluateError` (an unknown metric
:class:`~spips_pyiqa.evaluation.fr_metrics.UnknownMetricError`) with a one-line message.

References
----------
R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric." CVPR 2018 (BAPPS, 2AFC and JND protocols).
Lao & Yu 2025, SPIPS: the paper's tables report 2AFC and JND per BAPPS category, as this module.
"""

import csv
import inspect
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyiqa
import torch
import yaml
from numpy.typing import NDArray
from pyiqa.data import build_dataset
from torch.utils.data import DataLoader
from tqdm import tqdm

from spips_pyiqa.data.bapps_prepare import (
    JND_CATEGORIES,
    META_INFO_NAME,
    TRAIN_2AFC_CATEGORIES,
    VAL_2AFC_CATEGORIES,
    dataset_options,
    default_output_dir,
)
from spips_pyiqa.evaluation.fr_metrics import check_fr_metrics
from spips_pyiqa.metrics.bapps_scores import (
    CategoryScore,
    category_average,
    markdown_table,
    score_2afc_category,
    score_jnd_category,
    to_distance,
)
from spips_pyiqa.utils.distributed import (
    DistInfo,
    chunk_rounds,
    gather_from_ranks,
    local_device,
)

__all__ = [
    'DatasetSpec',
    'EvaluateError',
    'EvaluateOptions',
    'evaluate',
    'load_options',
    'metric_distances',
    'write_results',
]

KNOWN_CATEGORIES = {
    '2afc': tuple(dict.fromkeys((*VAL_2AFC_CATEGORIES, *TRAIN_2AFC_CATEGORIES))),
    'jnd': JND_CATEGORIES,
}
# (target, ref) item keys of pyiqa's BAPPSDataset for each distance a task needs.
DISTANCE_INPUTS = {
    '2afc': {'d0': ('distA_img', 'ref_img'), 'd1': ('distB_img', 'ref_img')},
    'jnd': {'d': ('distB_img', 'distA_img')},
}
REQUIRED_DATASET_KEYS = ('dataroot_target', 'mode', 'categories', 'batch_size_per_gpu')
PREPARE_HINT = 'run `python -m spips_pyiqa prepare-bapps BAPPS_ROOT` first'


class EvaluateError(ValueError):
    """Unusable options, data or metric: the message is one line."""


@dataclass(frozen=True)
class DatasetSpec:
    """One ``datasets`` block: a BAPPS task (``2afc`` or ``jnd``) scored category by category."""

    name: str
    root: Path
    meta_dir: Path
    phase: str
    mode: str
    categories: tuple[str, ...]
    batch_size: int
    num_workers: int


@dataclass(frozen=True)
class EvaluateOptions:
    """Everything ``evaluate`` needs, after command-line overrides."""

    name: str
    metric: str
    pretrained_model_path: Path | None
    device: torch.device
    datasets: tuple[DatasetSpec, ...]
    out_dir: Path


def _device(num_gpu: int | str) -> torch.device:
    """pyiqa's ``num_gpu``: 0 is the CPU; a GPU count, or ``auto`` when CUDA exists, is CUDA."""
    if num_gpu == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if not isinstance(num_gpu, int) or num_gpu < 0:
        raise EvaluateError(f'num_gpu must be 0, a GPU count or auto, got {num_gpu!r}')
    if num_gpu > 0 and not torch.cuda.is_available():
        raise EvaluateError(f'num_gpu: {num_gpu} but CUDA is not available (use num_gpu: 0)')
    return torch.device('cuda' if num_gpu > 0 else 'cpu')


def _dataset_spec(key: str, block: dict[str, Any], root: Path | None) -> DatasetSpec:
    """Parse one ``datasets`` block; ``root`` (``--bapps-root``) replaces ``dataroot_target``."""
    missing = [name for name in REQUIRED_DATASET_KEYS if name not in block]
    if missing:
        raise EvaluateError(f'datasets.{key} lacks {", ".join(missing)}')
    if block.get('type', 'BAPPSDataset') != 'BAPPSDataset':
        raise EvaluateError(f'datasets.{key}.type must be BAPPSDataset, got {block["type"]!r}')
    mode = block['mode']
    if mode not in KNOWN_CATEGORIES:
        raise EvaluateError(f'datasets.{key}.mode must be 2afc or jnd, got {mode!r}')
    categories = tuple(block['categories'])
    unknown = [name for name in categories if name not in KNOWN_CATEGORIES[mode]]
    if unknown or not categories:
        expected = ', '.join(KNOWN_CATEGORIES[mode])
        raise EvaluateError(
            f'datasets.{key}.categories: {unknown or "none"}; BAPPS {mode} has {expected}'
        )
    root = Path(block['dataroot_target']) if root is None else root
    meta_dir = block.get('meta_info_dir')
    return DatasetSpec(
        name=block.get('name', key),
        root=root,
        meta_dir=default_output_dir(root) if meta_dir is None else Path(meta_dir),
        phase=block.get('phase', 'val'),
        mode=mode,
        categories=categories,
        batch_size=int(block['batch_size_per_gpu']),
        num_workers=int(block.get('num_worker_per_gpu', 0)),
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        options = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise EvaluateError(f'cannot read options {path}: {str(error).splitlines()[0]}') from None
    if not isinstance(options, dict):
        raise EvaluateError(f'options {path} must be a YAML mapping')
    return options


def load_options(
    path: Path | str,
    metric: str | None = None,
    bapps_root: Path | str | None = None,
    out: Path | str | None = None,
    pretrained_model_path: Path | str | None = None,
) -> EvaluateOptions:
    """Read an options YAML, apply the overrides (``None`` keeps the YAML's value; paths or strings)."""
    bapps_root = None if bapps_root is None else Path(bapps_root)
    options = _read_yaml(path)
    metric_block = options.get('metric') or {}
    datasets = options.get('datasets') or {}
    if not datasets:
        raise EvaluateError(f'options {path} have no datasets')
    name = str(options.get('name', 'BAPPS_val'))
    checkpoint = pretrained_model_path or metric_block.get('pretrained_model_path')
    results_root = out or (options.get('path') or {}).get('results_root')
    return EvaluateOptions(
        name=name,
        metric=metric or metric_block.get('name', 'spips'),
        pretrained_model_path=None if checkpoint is None else Path(checkpoint),
        device=_device(options.get('num_gpu', 0)),
        datasets=tuple(_dataset_spec(key, block, bapps_root) for key, block in datasets.items()),
        out_dir=Path('results') / name if results_root is None else Path(results_root),
    )


def _create_metric(options: EvaluateOptions, info: DistInfo = DistInfo()) -> torch.nn.Module:
    """``pyiqa.create_metric`` for a FR metric name, with the checkpoint if one is given."""
    check_fr_metrics([options.metric])
    kwargs = {}
    if options.pretrained_model_path is not None:
        if not options.pretrained_model_path.is_file():
            raise EvaluateError(f'pretrained_model_path not found: {options.pretrained_model_path}')
        kwargs['pretrained_model_path'] = str(options.pretrained_model_path)
    no_checkpoint = f'{options.metric} takes no pretrained_model_path (no weights to load)'
    try:
        metric = pyiqa.create_metric(options.metric, device=local_device(options.device, info), **kwargs)
    except TypeError:  # an architecture without **kwargs refuses the keyword at once
        raise EvaluateError(no_checkpoint) from None
    # others (PSNR, SSIM, ...) keep unknown keywords and would fail only when scoring
    if kwargs and 'pretrained_model_path' not in inspect.signature(type(metric.net)).parameters:
        raise EvaluateError(no_checkpoint)
    return metric


def metric_distances(metric: torch.nn.Module, target: torch.Tensor, ref: torch.Tensor) -> NDArray:
    """The metric's scores of a batch as distances (:func:`to_distance` with ``lower_better``).

    Shape:
        target, ref: ``(B, 3, H, W)`` in [0, 1]; returns ``(B,)`` float64.
    """
    with torch.no_grad():
        scores = metric(target, ref)
    scores = scores.detach().double().cpu().reshape(-1).numpy()
    if scores.shape != (target.shape[0],):
        batch = target.shape[0]
        raise EvaluateError(f'metric returned {scores.size} scores for a batch of {batch}')
    return to_distance(scores, metric.lower_better)


@dataclass(frozen=True)
class _Shard:
    """This rank's batches of one category: their indices among all batches, and their loader."""

    batch_ids: list[int]
    loader: DataLoader


def _loader(spec: DatasetSpec, category: str, info: DistInfo = DistInfo()) -> _Shard:
    """pyiqa's BAPPSDataset restricted to one category, batched, this rank's batches in a DataLoader."""
    if not spec.root.is_dir():
        raise EvaluateError(
            f'BAPPS root is not a folder: {spec.root} (set dataroot_target or --bapps-root)'
        )
    if not (spec.meta_dir / META_INFO_NAME).is_file():
        raise EvaluateError(f'no BAPPS meta-info {spec.meta_dir / META_INFO_NAME}: {PREPARE_HINT}')
    # '/category/' rather than 'category': pyiqa matches val_types as a substring of the p0 path.
    val_types = [f'/{category}/']
    opts = dataset_options(spec.root, spec.phase, spec.mode, spec.meta_dir, val_types)
    dataset = build_dataset({**opts, 'name': f'{spec.name}-{category}'})
    if len(dataset) == 0:
        raise EvaluateError(
            f'no BAPPS {spec.mode} {spec.phase} items for {category} in {spec.meta_dir}: '
            + PREPARE_HINT
        )
    size = spec.batch_size
    batches = [list(range(start, min(start + size, len(dataset)))) for start in range(0, len(dataset), size)]
    mine = [k for k in chunk_rounds(len(batches), info) if k is not None]
    loader = DataLoader(dataset, batch_sampler=[batches[k] for k in mine], num_workers=spec.num_workers)
    return _Shard(mine, loader)


def _category_score(
    metric: torch.nn.Module, mode: str, category: str, shard: _Shard, info: DistInfo = DistInfo()
) -> CategoryScore:
    """Score one category: distances and judgments batch by batch (this rank's batches, gathered
    from all ranks in batch order), then the task's protocol."""
    inputs = DISTANCE_INPUTS[mode]
    desc = f'{metric.metric_name} {mode}/{category}'
    parts = []
    for k, batch in zip(shard.batch_ids, tqdm(shard.loader, desc=desc, file=sys.stderr, leave=False,
                                              disable=not info.is_main)):
        columns = {key: metric_distances(metric, batch[t], batch[r]) for key, (t, r) in inputs.items()}
        parts.append((k, {**columns, 'judgment': batch['mos_label'].double().reshape(-1).numpy()}))
    parts = sorted(part for rank_parts in gather_from_ranks(parts, info) for part in rank_parts)
    data = {key: np.concatenate([columns[key] for _, columns in parts]) for key in (*inputs, 'judgment')}
    if mode == '2afc':
        return score_2afc_category(category, data['d0'], data['d1'], data['judgment'])
    return score_jnd_category(category, data['d'], data['judgment'])


def _average_row(rows: list[CategoryScore]) -> CategoryScore:
    """Unweighted mean of every value over the categories of one task."""
    keys = rows[0].values
    values = {key: category_average(rows, key) for key in keys}
    return replace(rows[0], category='average', n=sum(row.n for row in rows), values=values)


def evaluate(options: EvaluateOptions, info: DistInfo = DistInfo()) -> list[CategoryScore]:
    """Score every category of every dataset block; each block ends with its ``average`` row.

    All data is checked (by building its loaders) before the metric is created. Under torchrun
    (``info``) each rank scores its share of the batches; every rank returns all the scores.
    """
    loaders = [
        (spec.mode, {category: _loader(spec, category, info) for category in spec.categories})
        for spec in options.datasets
    ]
    metric = _create_metric(options, info)
    scores: list[CategoryScore] = []
    for mode, by_category in loaders:
        rows = [_category_score(metric, mode, c, shard, info) for c, shard in by_category.items()]
        scores += [*rows, _average_row(rows)]
    return scores


def _result_stem(options: EvaluateOptions) -> str:
    """``bapps_<metric>``, plus the checkpoint's name when one replaces the default weights."""
    checkpoint = options.pretrained_model_path
    return f'bapps_{options.metric}' + ('' if checkpoint is None else f'_{checkpoint.stem}')


def write_results(scores: list[CategoryScore], options: EvaluateOptions) -> tuple[Path, Path, str]:
    """Write the CSV (raw values) and Markdown (x100) tables; return both paths and the Markdown."""
    options.out_dir.mkdir(parents=True, exist_ok=True)
    stem = _result_stem(options)
    csv_path, md_path = options.out_dir / f'{stem}.csv', options.out_dir / f'{stem}.md'
    keys = list(dict.fromkeys(key for score in scores for key in score.values))
    with csv_path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(['metric', 'task', 'category', 'n', *keys])
        for score in scores:
            values = [f'{score.values[key]:.6f}' if key in score.values else '' for key in keys]
            writer.writerow([options.metric, score.task, score.category, score.n, *values])
    title = f'BAPPS {options.name}: {options.metric}'
    if options.pretrained_model_path is not None:
        title += f' ({options.pretrained_model_path})'
    markdown = f'### {title} (x100)\n\n{markdown_table(scores)}\n'
    md_path.write_text(markdown)
    return csv_path, md_path, markdown
