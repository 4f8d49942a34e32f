"""Figures of the benchmark (matplotlib, Agg backend): SPIPS quality maps, score-vs-DMOS scatters and
the reference-recovery test.

* :func:`quality_map_figure`, like Figs. 3-4 of Lao & Yu (2025): for one (target, reference) pair,
  one row per SPIPS variant with the target, the reference, each group's quality map (traditional,
  perceptual, semantic: :meth:`SPIPS.quality_maps`) and the fused SPIPS map as heat maps. A group
  an ablation lacks is an empty panel. Each heat map has its own colour scale (bar beside it); its
  title gives the map's mean, which approximates the group's distance.
* :func:`scatter_figure`: a grid with one panel per metric, raw score against DMOS, one colour per
  distortion type, with the fitted logistic of the PLCC column.
* :func:`objective_curves_figure` and :func:`objective_recovered_figure`: the reference-recovery test
  of :mod:`spips_pyiqa.benchmark.objective`, PSNR against step and the recovered images.
"""

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import torch

from spips_pyiqa.metrics.bapps_scores import to_distance
from spips_pyiqa.benchmark.agreement import LiveDev
from spips_pyiqa.benchmark.objective import ObjectiveRun
from spips_pyiqa.metrics.correlation import fit_logistic
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.archs.groups import GROUPS

__all__ = ['map_pairs', 'objective_curves_figure', 'objective_recovered_figure', 'quality_map_figure', 'scatter_figure']

#: scikit-image photographs and the distortion (kind, severity 0-3) shown for each.
PHOTO_PAIRS = (('astronaut', 'noise', 2), ('coffee', 'blur', 2), ('chelsea', 'jpeg', 2))
COLUMNS = ('target', 'reference', *GROUPS, 'spips')


def map_pairs() -> list[tuple[str, str, torch.Tensor, torch.Tensor]]:
    """(file stem, caption, target, reference) of each pair to draw: the scikit-image photographs
    with :data:`PHOTO_PAIRS`. live_dev images are third-party data and are never drawn here: the
    figures are committed, and ``../shared`` must not be copied into the project in any form."""
    pairs = []
    for name, kind, severity in PHOTO_PAIRS:
        ref = photo(name)
        pairs.append((f'{name}_{kind}', f'skimage {name}, {kind} (severity {severity} of 0-3)',
                      distort(ref, kind, severity), ref))
    return pairs


def _save(figure, title: str, path, dpi: int) -> Path:
    """Title, lay out, write ``path`` (PNG, folders created) and close ``figure``."""
    figure.suptitle(title, fontsize=11)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    plt.close(figure)
    return path


def _show_image(axis, image: torch.Tensor, title: str) -> None:
    axis.imshow(image.squeeze(0).permute(1, 2, 0).clamp(0, 1).numpy())
    axis.set_title(title, fontsize=9)
    axis.axis('off')


def quality_map_figure(caption: str, target: torch.Tensor, ref: torch.Tensor, variants: dict, path) -> Path:
    """Draw one pair for every SPIPS variant (``name -> pyiqa metric``); write ``path`` (PNG)."""
    figure, axes = plt.subplots(len(variants), len(COLUMNS), figsize=(2.7 * len(COLUMNS), 2.2 * len(variants)),
                                squeeze=False)
    for axes_row, (name, metric) in zip(axes, variants.items()):
        with torch.no_grad():
            maps = metric.net.quality_maps(target, ref)
            score = metric(target, ref).item()
        _show_image(axes_row[0], target, f'{name}: target\nscore {score:.4f}')
        _show_image(axes_row[1], ref, 'reference')
        for axis, group in zip(axes_row[2:], COLUMNS[2:]):
            axis.axis('off')
            if group not in maps:
                axis.text(0.5, 0.5, f'no {group} group\nin {name}', ha='center', va='center', fontsize=9,
                          transform=axis.transAxes)
                continue
            values = maps[group].squeeze().cpu().numpy()
            shown = axis.imshow(values, cmap='inferno', vmin=0, vmax=max(values.max(), 1e-12))
            label = 'fused SPIPS map' if group == 'spips' else f'{group} map'
            axis.set_title(f'{label}\nmean {values.mean():.4f}', fontsize=9)
            figure.colorbar(shown, ax=axis, fraction=0.046, pad=0.02)
    return _save(figure, caption, path, dpi=72)


def scatter_figure(scores: dict[str, np.ndarray], lower_better: dict[str, bool], dataset: LiveDev,
                   corr: dict, path, columns: int = 4) -> Path:
    """Score vs DMOS per metric (grid of panels) with the fitted logistic; write ``path`` (PNG)."""
    names: Sequence[str] = list(scores)
    rows = math.ceil(len(names) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows), squeeze=False)
    kinds = list(dict.fromkeys(dataset.distortions))
    colours = dict(zip(kinds, plt.get_cmap('tab10').colors))
    for axis, name in zip(axes.flat, names):
        raw = scores[name]
        for kind in kinds:
            mask = dataset.distortions == kind
            axis.scatter(raw[mask], dataset.dmos[mask], s=18, color=colours[kind], label=kind)
        sign = 1.0 if lower_better[name] else -1.0
        fitted = fit_logistic(to_distance(raw, lower_better[name]), dataset.dmos)
        if fitted is not None:
            grid = np.linspace(raw.min(), raw.max(), 200)
            axis.plot(grid, fitted(sign * grid), color='black', linewidth=1)
        c = corr[name]['all']
        axis.set_title(f'{name}\nSRCC {c.srcc:.3f}  PLCC {c.plcc:.3f}', fontsize=10)
        axis.set_xlabel('score' + (' (lower = better)' if lower_better[name] else ' (higher = better)'), fontsize=8)
        axis.set_ylabel('DMOS (higher = worse)', fontsize=8)
    for axis in list(axes.flat)[len(names):]:
        axis.axis('off')
    axes.flat[0].legend(fontsize=8)
    return _save(figure, f'live_dev (LIVE subset, n={len(dataset.rows)}): metric score vs DMOS', path, dpi=80)


def objective_curves_figure(run: ObjectiveRun, path) -> Path:
    """PSNR to the reference (mean over the photographs) against step: one panel per start, one line
    per optimised metric (SPIPS variants solid, the others dashed); write ``path`` (PNG)."""
    figure, axes = plt.subplots(1, len(run.starts), figsize=(4 * len(run.starts) + 2, 4), squeeze=False, sharey=True)
    colours = plt.get_cmap('tab20').colors
    for number, (name, recovery) in enumerate(run.recoveries.items()):
        curves = recovery.psnr.reshape(len(recovery.psnr), len(run.starts), len(run.photos)).mean(-1)
        for axis, curve in zip(axes[0], curves.T):
            axis.plot(curve.numpy(), '-' if name.startswith('spips') else '--', color=colours[number % len(colours)],
                      linewidth=1.3, label=name)
    for axis, start in zip(axes[0], run.starts):
        axis.set_title(f'start: {start}', fontsize=10)
        axis.set_xlabel('Adam step', fontsize=9)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel('PSNR to the reference (dB)', fontsize=9)
    axes[0][-1].legend(fontsize=8, loc='center left', bbox_to_anchor=(1.02, 0.5))
    title = (f'Reference recovery: PSNR while minimising each metric (mean over {len(run.photos)} photographs, '
             f'{run.size} px)')
    return _save(figure, title, path, dpi=80)


def objective_recovered_figure(run: ObjectiveRun, path, photo_index: int = 0) -> Path:
    """Photograph ``photo_index`` of ``run``: one row per start, the start image, each optimised metric's
    result (titled with its PSNR) and the reference; write ``path`` (PNG)."""
    refs, starts = run.by_start(run.refs)[:, photo_index], run.by_start(run.start_images)[:, photo_index]
    psnr = run.by_start(run.start_scores['psnr'])[:, photo_index]
    columns = len(run.recoveries) + 2
    figure, axes = plt.subplots(len(run.starts), columns, figsize=(1.6 * columns, 1.8 * len(run.starts)),
                                squeeze=False)
    for row, start in enumerate(run.starts):
        _show_image(axes[row][0], starts[row:row + 1], f'start: {start}\n{psnr[row]:.1f} dB')
        for axis, (name, recovery) in zip(axes[row][1:], run.recoveries.items()):
            result = run.by_start(recovery.result)[row, photo_index]
            score = run.by_start(recovery.checkpoints[run.steps]['psnr'])[row, photo_index]
            _show_image(axis, result[None], f'{textwrap.fill(name, 21)}\n{score:.1f} dB')
        _show_image(axes[row][-1], refs[row:row + 1], 'reference')
    title = (f'Reference recovery: skimage {run.photos[photo_index]}, {run.size} px, after {run.steps} Adam steps '
             '(PSNR to the reference under each)')
    return _save(figure, title, path, dpi=72)
