"""Cross-validation of human-trained heads on live_dev + live_jpeg_dev: the tables and the curves.

``python -m spips_pyiqa benchmark --only human-heads`` runs :mod:`spips_pyiqa.recipes.human_heads`'s
protocol for every SPIPS variant with human-trained heads and writes

* ``human_heads_cv.{md,csv}``: per variant, the label-free heads, the chosen recipe (scene and
  distortion folds) and the nested estimate of the whole procedure: pooled SRCC and pyiqa's plain
  PLCC with 95% bootstrap-over-scenes intervals, logistic-fit PLCC, KRCC, per distortion fold, and
  the ship decision; every other benchmarked metric (pyiqa's psnr, ssim, ms_ssim, vif, lpips,
  lpips-vgg, dists, the label-free-only SPIPS variants) on the same images beside them: the
  live_dev + live_jpeg_dev agreement table;
* ``human_heads_per_scene.{md,csv}``: SRCC within each scene, label-free vs nested;
* ``human_heads_candidates.{md,csv}``: every candidate recipe's pooled numbers, whether it is
  admissible and whether it lies within one standard error of the best;
* ``figures/human_heads_curves.png``: training loss and held-out SRCC per epoch of each chosen
  recipe on the scene folds of the first seed.
"""

from pathlib import Path

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np

from spips_pyiqa.benchmark.tables import Table
from spips_pyiqa.data.live_dev import HUMAN_DATA
from spips_pyiqa.metric_configs import LABEL_FREE_SUFFIX
from spips_pyiqa.metrics.grouped_cv import Pooled, bootstrap_correlations, per_group_srcc, pooled, scene_bootstrap
from spips_pyiqa.recipes.human_heads import PROTOCOL, UNTRAINED, CVReport, Protocol
from spips_pyiqa.recipes.recipe_selection import NONINFERIORITY_MARGIN, Summary, criterion, scene_strata, summarise

__all__ = ['LEADERBOARD_STEM', 'candidates_table', 'curves_figure', 'cv_table', 'leaderboard_rows', 'per_scene_table',
           'write_human_heads_tables']

DATA = ' + '.join(HUMAN_DATA)
#: File stem of the pyiqa-format rows for the 17-scene LIVE subset.
LEADERBOARD_STEM = 'leaderboard_live_17_scenes'


def _interval(prediction: np.ndarray, badness: np.ndarray, draws) -> tuple[str, str]:
    values = bootstrap_correlations(prediction[None], badness, draws)[:, 0]
    low, high = np.quantile(values, [0.025, 0.975], axis=0)
    return f'{low[0]:.2f} to {high[0]:.2f}', f'{low[1]:.2f} to {high[1]:.2f}'


def _pooled_cells(p: Pooled, intervals: tuple[str, str] | None = None) -> dict:
    cells = {'pooled SRCC': p.srcc, 'plain PLCC': p.plcc, 'fitted PLCC': p.plcc_fit, 'KRCC': p.krcc}
    if intervals:
        cells.update({'SRCC 95% interval': intervals[0], 'plain PLCC 95% interval': intervals[1]})
    return cells


def _stratum_cells(prediction: np.ndarray, badness: np.ndarray, strata: np.ndarray) -> dict:
    """Pooled SRCC and plain PLCC within each kind of scene (its set of distortion types)."""
    cells = {}
    for stratum in sorted(set(strata)):
        p = pooled(prediction[strata == stratum], badness[strata == stratum])
        cells.update({f'{stratum} scenes SRCC': p.srcc, f'{stratum} scenes plain PLCC': p.plcc})
    return cells


def _held_out_cells(prediction: np.ndarray, badness: np.ndarray, draws, strata: np.ndarray) -> dict:
    """Pooled cells with their bootstrap intervals, and the same within each kind of scene."""
    return {**_pooled_cells(pooled(prediction, badness), _interval(prediction, badness, draws)),
            **_stratum_cells(prediction, badness, strata)}


def _distortion_cells(summary: Summary) -> dict:
    return {f'{kind} {name}': getattr(p, attr) for kind, p in summary.distortion.items()
            for name, attr in (('SRCC', 'srcc'), ('plain PLCC', 'plcc'))}


def _notes(reports: list[CVReport], protocol: Protocol) -> list[str]:
    scenes = reports[0].choice.summaries[UNTRAINED].scene.n if reports else 0
    return [
        f'Data: {DATA} (LIVE Release 2 subsets, n={scenes} images, 17 scenes; live_dev: 3 scenes x gblur/jpeg/'
        'wnoise, live_jpeg_dev: 14 scenes, JPEG only), DMOS. Every trained number is held out. Scene folds: grouped '
        f'{protocol.folds}-fold by scene (each test fold holds 3-4 whole scenes), repeated over seeds '
        f'{list(protocol.seeds)}; the out-of-fold predictions of all folds are scored as one data set, as a '
        'leaderboard scores a metric: pooled SRCC, **plain PLCC = pyiqa\'s calculate_plcc, no fit**, PLCC after '
        'the VQEG logistic fit, KRCC (mean over seeds). Distortion folds: train without one distortion type, test '
        'on its images (`gblur SRCC` = heads that never saw blur, on the blurred images). `gblur+jpeg+wnoise scenes` '
        '/ `jpeg scenes`: the same pooled numbers within the 3 multi-distortion scenes (39 images) / the 14 JPEG-only '
        'scenes (82 images).',
        '`chosen` rows are optimistic: the recipe was chosen on these same folds among the candidates (table '
        'human_heads_candidates). `NESTED` rows are the honest estimate of the whole procedure: grouped '
        f'{protocol.folds}-fold by scene (seed {protocol.nested_seed}); for each outer fold the recipe is chosen '
        f'by the same protocol ({protocol.inner_folds} inner scene folds, distortion folds, bootstrap) on its '
        'training scenes alone, trained there, and scores the held-out scenes.',
        f'Intervals: 95% percentile intervals of a bootstrap over scenes ({protocol.samples} resamples; images of a '
        'scene are not independent), stratified: each resample draws 3 of the 3 multi-distortion scenes and 14 of '
        'the 14 JPEG-only scenes with replacement, keeping the data\'s design. The label-free rows use no label: '
        'every image scored by the shipped v0.1 heads.',
        '`ships` (a non-inferiority test of the NESTED estimate against label-free; recipes/recipe_selection.py, '
        'ship_decision; each check a one-sided test at 5%, reading one end of the 90% interval): human-trained heads '
        'become the default only where the lower end of the 90% interval of the gain (a paired stratified '
        f'bootstrap over scenes, {protocol.ship_samples} resamples) is above '
        f'-{NONINFERIORITY_MARGIN} in both pooled SRCC and plain PLCC (no loss beyond the margin) and above 0 in '
        'at least one (a gain beyond the noise), and no distortion fold of the chosen recipe loses beyond its own '
        'noise (the upper end of its paired gain interval, a bootstrap over that fold\'s scenes, below 0).',
        '`pyiqa, no training` rows: every other metric of the benchmark on the same 121 images (no label used).',
    ]


def cv_table(reports: list[CVReport], baselines: dict[str, np.ndarray], scenes, distortions,
             protocol: Protocol = PROTOCOL, earlier: dict[str, tuple[str, np.ndarray]] | None = None) -> Table:
    """The cross-validation table; ``baselines``: per-image distances of reference metrics;
    ``scenes``, ``distortions``: per image (the bootstrap's clusters and strata); ``earlier``: per
    variant whose default stays an earlier human-trained version, (version, its held-out predictions)."""
    earlier = earlier or {}
    rows = []
    strata = np.array(scene_strata(scenes, distortions))
    if reports:
        badness = reports[0].badness
        draws = scene_bootstrap(scenes, range(len(badness)), protocol.samples, 0, list(strata))
        kinds = sorted(set(reports[0].choice.summaries[UNTRAINED].distortion))
        for name, distance in baselines.items():
            row = {'metric': name, 'heads / recipe': 'pyiqa, no training'}
            row.update(_held_out_cells(distance, badness, draws, strata))
            rows.append(row)
    for report in reports:
        lf, chosen = report.choice.summaries[UNTRAINED], report.choice.summaries[report.recipe]
        row = {'metric': report.variant, 'heads / recipe': f'label-free (v0.1)'}
        row.update(_held_out_cells(report.label_free_scores, report.badness, draws, strata))
        row.update(_distortion_cells(lf))
        rows.append(row)
        if report.recipe != UNTRAINED:
            row = {'metric': report.variant, 'heads / recipe': f'chosen (optimistic): {report.recipe.name}'}
            evaluation = next(e for e in report.evaluations if e.recipe == report.recipe)
            row.update(_pooled_cells(summarise(evaluation, report.badness, fit=True).scene))
            row.update(_distortion_cells(chosen))
            rows.append(row)
        choices = '; '.join(f'{k}: {r.name}' for k, r in report.nested_choices.items())
        row = {'metric': report.variant, 'heads / recipe': f'NESTED (honest; choices per outer fold: {choices})'}
        row.update(_held_out_cells(report.nested, report.badness, draws, strata))
        row['ships'] = report.decision[1]
        rows.append(row)
        if report.variant in earlier:
            version, held_out = earlier[report.variant]
            row = {'metric': report.variant, 'heads / recipe': f'v{version} (the default; held out: the nested '
                                                               'predictions stored in its checkpoint)'}
            row.update(_held_out_cells(held_out, report.badness, draws, strata))
            row['ships'] = 'stays the default (shipped under the rule of its version)'
            rows.append(row)
    kinds = sorted({k for r in reports for k in r.choice.summaries[UNTRAINED].distortion})
    columns = ['metric', 'heads / recipe', 'pooled SRCC', 'SRCC 95% interval', 'plain PLCC', 'plain PLCC 95% interval',
               'fitted PLCC', 'KRCC',
               *[f'{k} scenes {s}' for k in sorted(set(strata)) for s in ('SRCC', 'plain PLCC')],
               *[f'{k} {s}' for k in kinds for s in ('SRCC', 'plain PLCC')], 'ships']
    return Table(f'Human-trained heads: cross-validation on {DATA}', columns, rows, _notes(reports, protocol))


def per_scene_table(reports: list[CVReport], scenes) -> Table:
    """SRCC within each scene: label-free heads vs the nested held-out predictions."""
    rows = []
    for report in reports:
        for label, prediction in (('label-free (v0.1)', report.label_free_scores), ('NESTED', report.nested)):
            row = {'metric': report.variant, 'heads': label}
            row.update({Path(k).stem: v for k, v in per_group_srcc(prediction, report.badness, scenes).items()})
            rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    notes = [f'Data: {DATA}. SRCC among the 5-14 images of each scene (within-scene ranking only; the pooled numbers '
             'of human_heads_cv also need one scale across scenes). NESTED: held-out predictions of the nested '
             'procedure (the scene was never seen by the heads that scored it). Each cell rests on 5-14 images: '
             'differences below ~0.1 are noise.']
    return Table(f'Human-trained heads: SRCC within each scene ({DATA})', columns, rows, notes)


def leaderboard_rows(reports: list[CVReport], baselines: dict[str, np.ndarray],
                     earlier: dict[str, tuple[str, np.ndarray]] | None = None) -> Table:
    """Rows in pyiqa's ``FR_benchmark_results.csv`` format for the 121 images of the 17 LIVE scenes:
    the reference metrics, each variant's label-free heads and its human-trained procedure (nested,
    held-out predictions, marked ``(held out)``)."""
    from spips_pyiqa.benchmark.leaderboard import column, leaderboard_cell
    from spips_pyiqa.metrics.correlation import correlations

    header = column('live_17_scenes')
    earlier = earlier or {}
    rows = []
    if reports:
        badness = reports[0].badness
        entries = list(baselines.items())
        for report in reports:
            kept = earlier.get(report.variant)
            shipped = ('shipped as the default' if report.ships else
                       f'not shipped: {f"v{kept[0]}" if kept else "label-free"} is the default')
            entries += [(f'{report.variant}-label-free', report.label_free_scores),
                        (f'{report.variant} human-trained (held out; {shipped})', report.nested)]
            if kept:
                entries.append((f'{report.variant} v{kept[0]} human-trained (held out; shipped as the default)',
                                kept[1]))
        rows = [{'Metric name': name, header: leaderboard_cell(correlations(values, badness, logistic=False))}
                for name, values in entries]
    notes = [f'Data: {DATA} (LIVE Release 2, 17 scenes, n=121, DMOS). Cells as pyiqa writes them: plain PLCC (no fit), '
             'SRCC, KRCC, sign-corrected, 4 decimals. `(held out)` rows: every image scored by heads of the nested '
             'procedure that never saw its scene (the shipped heads saw every image: their own in-sample numbers here '
             'would be no evidence); where the ship rule refused, the procedure\'s estimate is shown all the same. '
             'Not LIVE as a whole: 17 of its 29 scenes, JPEG-heavy.']
    return Table('Leaderboard rows: the 17-scene LIVE subset (pyiqa format)', ['Metric name', header], rows, notes)


def candidates_table(reports: list[CVReport]) -> Table:
    """Every candidate's pooled out-of-fold numbers and what the protocol made of them."""
    rows = []
    for report in reports:
        c = report.choice
        for recipe, summary in c.summaries.items():
            row = {'variant': report.variant, 'recipe': recipe.name, 'pooled SRCC': summary.scene.srcc,
                   'plain PLCC': summary.scene.plcc, 'criterion': criterion(summary)}
            row.update(_distortion_cells(summary))
            row.update({f'{kind} {name} gain high': gain[attr].high for kind, gain in c.fold_gains[recipe].items()
                        for name, attr in (('SRCC', 'srcc'), ('plain PLCC', 'plcc'))})
            row.update({'admissible': 'yes' if c.admissible[recipe] else 'no',
                        'best - criterion': criterion(c.summaries[c.best]) - criterion(summary),
                        'best\'s SE': c.standard_error,
                        'within 1 SE of best': 'yes' if c.within[recipe] else 'no',
                        'role': ' '.join(w for w, on in (('best', recipe == c.best), ('CHOSEN', recipe == c.chosen)) if on)})
            rows.append(row)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    notes = [
        'Scene folds and distortion folds as in human_heads_cv (pooled out-of-fold, mean over seeds). criterion = '
        '(pooled SRCC + plain PLCC) / 2. admissible: on the scene folds no loss to label-free in pooled SRCC or plain '
        'PLCC, and no distortion fold losing beyond its own noise (`<fold> '
        '<statistic> gain high`: upper end of the 90% interval of the fold\'s gain over label-free, a paired '
        'bootstrap over the fold\'s scenes; below 0 refuses). best: the admissible recipe of highest criterion. '
        'SE: the standard deviation of the best\'s criterion over the stratified bootstrap over scenes. '
        'CHOSEN (the one-standard-error rule): the most conservative admissible recipe whose criterion is within one '
        'SE of the best\'s (fewer parts learning, then a stronger prior, then no linear term, then all pairs). '
        'Priors: the grid 10 ... 0 for every part, extended where the best lies on an open edge and refined around '
        'the best (the extra rows).',
        'Every candidate: full-batch Adam lr 0.05, 100 epochs, Bradley-Terry temperature 0.5 x the spread of the '
        'starting scores; prior = HeadsPrior strength toward the label-free heads; `+ 1 linear`: plus pyiqa\'s '
        'plcc_loss (keeps scores linear in DMOS).',
    ]
    return Table('Human-trained heads: candidate recipes', columns, rows, notes)


def curves_figure(reports: list[CVReport], path: Path) -> Path:
    """Training loss and held-out SRCC per epoch of each chosen recipe, scene folds of the first seed."""
    shown = [r for r in reports if r.curves]
    figure, axes = plt.subplots(2, max(len(shown), 1), figsize=(4 * max(len(shown), 1), 6), squeeze=False)
    for column, report in enumerate(shown):
        for fold, curve in report.curves.items():
            epochs = [p['epoch'] for p in curve]
            axes[0, column].plot(epochs, [p['loss'] for p in curve], label=fold)
            axes[1, column].plot(epochs, [p['held-out SRCC'] for p in curve], label=f'{fold} held out')
        axes[0, column].set_title(f'{report.variant}\n{report.recipe.name}', fontsize=8)
        axes[0, column].set_ylabel('training loss')
        axes[1, column].set_ylabel('held-out SRCC')
        axes[1, column].set_xlabel('epoch')
        for axis in axes[:, column]:
            axis.legend(fontsize=7)
    figure.suptitle(f'Human-trained heads on {DATA}: grouped scene-fold training curves', fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def write_human_heads_tables(roots, metrics, cache, out: Path, say=print) -> list[tuple[str, Table]]:
    """Run the protocol for every human-trained variant on the folders ``roots`` and return the
    tables of :func:`human_heads_tables`. The benchmark ``cache``'s ``features`` folder keeps the
    pooled features."""
    from spips_pyiqa.recipes.human_heads import VARIANTS, reports

    missing = [r for r in roots if not (Path(r) / 'scores.csv').is_file()]
    if missing:
        say(f'human-heads: skipped, no scores.csv in {", ".join(map(str, missing))}')
        return []
    variants = [v for v in VARIANTS if v in metrics] or list(VARIANTS)
    found, _ = reports(variants, roots, cache.root / 'features' if cache.root is not None else None, say=say)
    return human_heads_tables(found, roots, metrics, cache, out, say)


def human_heads_tables(found: list[CVReport], roots, metrics, cache, out: Path, say=print) -> list[tuple[str, Table]]:
    """The tables (``stem, table``) of the reports ``found`` on the folders ``roots``; the curves
    figure and the pyiqa-format rows are written into ``out``. ``metrics`` (``name -> BenchMetric``):
    every one without a report (neither a reported variant nor its ``-label-free`` name) becomes a
    reference row, scored through the benchmark ``cache``."""
    from spips_pyiqa.benchmark.agreement import held_out_scores, live_dev_scores, load_human_data, trained_on_live_dev
    from spips_pyiqa.benchmark.leaderboard import write_leaderboard
    from spips_pyiqa.metrics.bapps_scores import to_distance

    dataset = load_human_data(roots)
    reported = {name for r in found for name in (r.variant, r.variant + LABEL_FREE_SUFFIX)}
    baselines = {n: m for n, m in metrics.items() if n not in reported}
    raw = live_dev_scores(baselines, dataset, cache)
    distances = {n: to_distance(raw[n], m.lower_better) for n, m in baselines.items()}
    scenes, distortions = [row.scene for row in dataset.rows], [row.distortion for row in dataset.rows]
    kept = {r.variant: metrics[r.variant] for r in found if not r.ships and r.variant in metrics
            and trained_on_live_dev(metrics[r.variant])}
    held_out = held_out_scores(kept, dataset, {})
    earlier = {v: (m.metric.net.meta['version'], held_out[v]) for v, m in kept.items()}
    say(f'wrote {curves_figure(found, Path(out) / "figures" / "human_heads_curves.png")}')
    csv_path, _ = write_leaderboard(leaderboard_rows(found, distances, earlier), out, LEADERBOARD_STEM)
    say(f'wrote {csv_path}')
    return [('human_heads_cv', cv_table(found, distances, scenes, distortions, earlier=earlier)),
            ('human_heads_per_scene', per_scene_table(found, scenes)),
            ('human_heads_candidates', candidates_table(found))]
