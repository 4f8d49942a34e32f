"""Cross-validation of human-trained heads on live_dev: the table and the training curves.

``python -m spips_pyiqa benchmark --only human-heads`` runs :mod:`spips_pyiqa.recipes.human_heads`'s
cross-validation for every SPIPS variant and writes

* ``human_heads_cv.{md,csv}``: per variant, label-free heads vs the chosen recipe vs the nested
  estimate (recipe chosen on the training scenes only): held-out SRCC per scene and per distortion
  type, and the pooled out-of-fold SRCC (95% interval), PLCC (logistic fit) and KRCC; with pyiqa's
  ``dists``, ``vif`` and ``lpips`` on the same folds (no training) for reference;
* ``human_heads_candidates.{md,csv}``: the selection criterion of every candidate recipe;
* ``figures/human_heads_curves.png``: training loss and held-out SRCC per epoch of the chosen recipe
  on each leave-one-scene-out fold.
"""

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from spips_pyiqa.benchmark.tables import Table, relative_path
from spips_pyiqa.metrics.correlation import correlations, srcc_interval
from spips_pyiqa.recipes.human_heads import CVReport, CVResult, Features

__all__ = ['candidates_table', 'curves_figure', 'cv_table']


def _short(name: str) -> str:
    return Path(name).stem


def _row(label: str, recipe: str, by_scene: dict, by_kind: dict, pooled: np.ndarray, badness: np.ndarray) -> dict:
    c = correlations(pooled, badness)
    low, high = srcc_interval(c.srcc, c.n)
    row = {'metric': label, 'recipe': recipe}
    row.update({f'SRCC scene {_short(k)}': v for k, v in by_scene.items()})
    row['SRCC scene mean'] = float(np.mean(list(by_scene.values())))
    row.update({f'SRCC distortion {k}': v for k, v in by_kind.items()})
    if by_kind:
        row['SRCC distortion mean'] = float(np.mean(list(by_kind.values())))
    row.update({'pooled SRCC': c.srcc, 'pooled SRCC 95% interval': f'{low:.2f} to {high:.2f}',
                'pooled PLCC': c.plcc, 'pooled KRCC': c.krcc})
    return row


def _per_fold(values: np.ndarray, badness: np.ndarray, keys) -> dict[str, float]:
    keys = np.asarray(keys)
    return {k: float(stats.spearmanr(values[keys == k], badness[keys == k]).statistic) for k in sorted(set(keys))}


def cv_table(reports: list[CVReport], features: Features, baselines: dict[str, np.ndarray], live_dev: Path) -> Table:
    """The cross-validation table; ``baselines``: per-image distances of reference metrics."""
    badness = features.badness
    rows = []
    for name, distance in baselines.items():
        rows.append(_row(name, 'pyiqa, no training', _per_fold(distance, badness, features.scenes),
                         _per_fold(distance, badness, features.distortions), distance, badness))
    for report in reports:
        lf, chosen = report.label_free, report.chosen
        rows.append(_row(f'{report.variant}', 'label-free (v0.1)', lf['scene'].fold_srcc,
                         lf['distortion'].fold_srcc, lf['scene'].predictions, badness))
        rows.append(_row(f'{report.variant}', f'chosen: {report.recipe.name}', chosen['scene'].fold_srcc,
                         chosen['distortion'].fold_srcc, chosen['scene'].predictions, badness))
        choices = '; '.join(f'{_short(k)}: {r.name}' for k, r in report.nested_choices.items())
        rows.append(_row(f'{report.variant}', f'NESTED (honest; choices {choices})', report.nested.fold_srcc,
                         {}, report.nested.predictions, badness))
        rows[-1]['ships'] = 'yes (v0.2)' if report.ships else 'no: label-free v0.1 stays'
    columns = list(dict.fromkeys(k for row in rows for k in row))
    notes = [
        f'Data: {relative_path(live_dev)} (LIVE Release 2 subset, n={len(badness)}: '
        f'{len(set(features.scenes))} scenes x {len(set(features.distortions))} distortion types), DMOS. '
        'Every number is held out: `SRCC scene X` is the SRCC on scene X of heads trained on the other scenes '
        '(leave one scene out); `SRCC distortion Y` the same leaving a distortion type out; pooled = the '
        '39 out-of-fold predictions of the leave-one-scene-out models together (three models: their scales '
        'differ, which lowers pooled numbers). PLCC after the logistic fit.',
        '`chosen` rows are optimistic: the recipe was chosen by these same folds among the candidates '
        '(table human_heads_candidates). `NESTED` rows are the honest estimate of the whole procedure: for '
        'each held-out scene the recipe is chosen by cross-validation on the two other scenes alone.',
        'Each fold holds 12-15 images: one SRCC carries roughly +-0.03-0.05 of sampling noise. Only three '
        'distortion types (gblur, jpeg, wnoise) exist here: nothing is known about others.',
        '`ships`: human-trained heads become the default when the nested scene estimate and the held-out '
        'distortion folds both beat label-free (recipes/human_heads.py, CVReport.ships).',
    ]
    return Table('Human-trained heads: cross-validation on live_dev', columns, rows, notes)


def candidates_table(reports: list[CVReport]) -> Table:
    """Selection criterion (mean held-out SRCC over scene and distortion folds) of every candidate."""
    rows = [
        {'variant': r.variant, 'recipe': recipe.name, 'criterion': value, 'chosen': 'yes' if recipe == r.recipe else ''}
        for r in reports for recipe, value in r.criterion.items()
    ]
    notes = ['Criterion: mean held-out SRCC over the 3 leave-one-scene-out and 3 leave-one-distortion-out '
             'folds of live_dev; ties go to the simpler (earlier) recipe. Adam lr 0.05, 100 full-batch '
             'epochs, temperature 0.5 x the spread of the starting scores, for every candidate.']
    return Table('Human-trained heads: candidate recipes', ['variant', 'recipe', 'criterion', 'chosen'], rows, notes)


def curves_figure(reports: list[CVReport], path: Path) -> Path:
    """Training loss and held-out SRCC per epoch, chosen recipe, each leave-one-scene-out fold."""
    shown = [r for r in reports if r.chosen['scene'].curves and next(iter(r.chosen['scene'].curves.values()))]
    figure, axes = plt.subplots(2, max(len(shown), 1), figsize=(4 * max(len(shown), 1), 6), squeeze=False)
    for column, report in enumerate(shown):
        result: CVResult = report.chosen['scene']
        for fold, curve in result.curves.items():
            epochs = [p['epoch'] for p in curve]
            axes[0, column].plot(epochs, [p['loss'] for p in curve], label=f'without {_short(fold)}')
            axes[1, column].plot(epochs, [p['held-out SRCC'] for p in curve], label=f'{_short(fold)} held out')
        axes[0, column].set_title(f'{report.variant}\n{report.recipe.name}', fontsize=8)
        axes[0, column].set_ylabel('training loss')
        axes[1, column].set_ylabel('held-out SRCC')
        axes[1, column].set_xlabel('epoch')
        for axis in axes[:, column]:
            axis.legend(fontsize=7)
    figure.suptitle('Human-trained heads on live_dev: leave-one-scene-out training curves', fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
