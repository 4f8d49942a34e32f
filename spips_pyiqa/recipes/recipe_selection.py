r"""Which recipe wins, and whether its heads ship: the leaderboard protocol turned into rules.

Every candidate recipe has out-of-fold predictions (:class:`Evaluation`): on grouped scene folds
(several seeds) and on distortion folds (train without one distortion type, test on it). From
them, as leaderboards measure (:mod:`spips_pyiqa.metrics.grouped_cv`):

* :func:`summarise`: pooled SRCC, pyiqa's plain PLCC, fitted PLCC and KRCC over all held-out
  predictions of the scene folds (mean over seeds), and per distortion fold;
* :func:`paired_gain`: the gain of one prediction over another in pooled SRCC and plain PLCC with
  its ``level`` interval, from a paired bootstrap over scenes (stratified by each scene's set of
  distortion types, :func:`scene_strata`): the noise level of every rule below;
* :func:`admissible`: a recipe may replace the label-free heads only if, on the scene folds, it
  is at least as good in pooled SRCC and in plain PLCC (out-of-fold, so already held out; a recipe
  that trades one statistic for the other is not a candidate), and no distortion fold loses
  *beyond its own noise* (the upper end of that fold's paired gain interval, a bootstrap over the
  fold's scenes, is below 0): 13-15 images of 3 scenes cannot veto a recipe by one swapped pair;
* :func:`choose`: the admissible recipe with the best criterion (mean of pooled SRCC and plain
  PLCC) is the *best*; its standard error is the standard deviation of its criterion over the
  stratified bootstrap over scenes; among the admissible recipes within **one standard error** of
  the best (Breiman's one-standard-error rule) the most conservative one (:attr:`Recipe.conservative_rank
  <spips_pyiqa.recipes.human_heads.Recipe.conservative_rank>`: fewer parts learning, stronger
  prior) is chosen. Label-free is the most conservative of all;
* :func:`ship_decision`: a non-inferiority test of the *nested* estimate of the whole procedure
  against label-free. The heads ship where the lower end of the paired interval of the gain is
  above ``-NONINFERIORITY_MARGIN`` in both pooled SRCC and plain PLCC (no loss beyond the margin),
  above 0 in at least one (a gain beyond the noise of 17 scenes), and none of the chosen recipe's
  distortion folds loses beyond its noise.

The nested estimate and the ship rule are the guard against shipping noise; the inner rule only has
to pick, among recipes the data cannot tell apart, the simplest.

References:
    L. Breiman, J. Friedman, R. Olshen, C. Stone, "Classification and Regression Trees", 1984
    (the one-standard-error rule: the simplest model within one standard error of the best).
    S. Wellek, "Testing Statistical Hypotheses of Equivalence and Noninferiority", 2010.
    D. J. Schuirmann, "A comparison of the two one-sided tests procedure and the power approach for
    assessing the equivalence of average bioavailability", J. Pharmacokinet. Biopharm., 1987.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spips_pyiqa.metrics.grouped_cv import Pooled, bootstrap_correlations, pooled, scene_bootstrap

__all__ = ['LEVEL', 'NONINFERIORITY_MARGIN', 'STATISTICS', 'Choice', 'Evaluation', 'Gain', 'Summary', 'admissible',
           'choose', 'criterion', 'fold_losses', 'paired_gain', 'scene_strata', 'ship_decision', 'summarise']

#: How far below label-free (pooled SRCC or plain PLCC) the nested estimate may be and still count
#: as "no worse" in the ship rule (the lower end of the gain's interval must lie above ``-margin``).
NONINFERIORITY_MARGIN = 0.01
#: Level of the paired intervals every rule reads. Each rule is a one-sided test at 5% (no loss
#: beyond the margin; a gain beyond 0; a distortion fold's loss beyond 0) and reads one end of the
#: two-sided 90% interval, i.e. a one-sided 95% bound: Schuirmann's two one-sided tests.
LEVEL = 0.90
#: The two statistics every rule reads: (name in the tables, attribute of :class:`Pooled`).
STATISTICS = (('SRCC', 'srcc'), ('plain PLCC', 'plcc'))


@dataclass
class Evaluation:
    """Out-of-fold predictions of one recipe on the items ``subset``.

    Attributes:
        recipe: the recipe (anything with ``conservative_rank`` and ``name``).
        subset: indices of the items it was evaluated on.
        scene: :math:`(S, N)` predictions of the grouped scene folds, one row per seed (NaN outside ``subset``).
        distortion: per held-out distortion type, :math:`(N,)` predictions of heads trained without
            it (NaN outside its items).
        curves: per scene fold, its training curve (when asked for).
    """

    recipe: Any
    subset: np.ndarray
    scene: np.ndarray
    distortion: dict[str, np.ndarray]
    curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Summary:
    """Pooled held-out correlations of an :class:`Evaluation`: scene folds (mean over seeds) and
    each distortion fold."""

    scene: Pooled
    distortion: dict[str, Pooled]


@dataclass(frozen=True)
class Gain:
    """Gain of one prediction over another in one statistic: point estimate and the ``level``
    interval of a paired bootstrap over scenes."""

    estimate: float
    low: float
    high: float


def _mean(values: Sequence[Pooled]) -> Pooled:
    return Pooled(values[0].n, *(float(np.mean([getattr(v, f) for v in values])) for f in ('srcc', 'plcc', 'plcc_fit', 'krcc')))


def summarise(evaluation: Evaluation, badness: np.ndarray, fit: bool = False) -> Summary:
    """:class:`Summary` of ``evaluation`` against ``badness`` (DMOS-like, all items); ``fit``: with
    the logistic-fit PLCC (slow; no rule reads it, the tables print it)."""
    s = evaluation.subset
    scene = _mean([pooled(row[s], badness[s], fit) for row in evaluation.scene])
    distortion = {}
    for kind, prediction in evaluation.distortion.items():
        held = np.isfinite(prediction)
        distortion[kind] = pooled(prediction[held], badness[held], fit)
    return Summary(scene, distortion)


def criterion(summary: Summary) -> float:
    """Mean of pooled SRCC and plain PLCC on the scene folds: what a leaderboard would print."""
    return (summary.scene.srcc + summary.scene.plcc) / 2


def scene_strata(scenes: Sequence[str], distortions: Sequence[str]) -> list[str]:
    """Per item, the distortion types its scene has (``'gblur+jpeg+wnoise'``, ``'jpeg'``): the
    strata of the bootstrap, so every resample keeps the data's mix of scene kinds."""
    kinds: dict[str, set] = {}
    for scene, kind in zip(scenes, distortions):
        kinds.setdefault(scene, set()).add(kind)
    return ['+'.join(sorted(kinds[scene])) for scene in scenes]


def paired_gain(predictions: np.ndarray, reference: np.ndarray, badness: np.ndarray, scenes: Sequence[str],
                strata: Sequence[str], items: Sequence[int] | None = None, samples: int = 1000, level: float = LEVEL,
                seed: int = 0) -> list[dict[str, Gain]]:
    """Per row of ``predictions``, its :class:`Gain` over ``reference`` in pooled SRCC and plain
    PLCC on ``items`` (default all): both scored on each resample of a bootstrap over scenes
    (stratified by ``strata``, e.g. :func:`scene_strata`), the difference taken per resample.

    Shape:
        - predictions: :math:`(R, N)`; reference, badness: :math:`(N,)`; scenes, strata: ``N`` labels.
        - Output: ``R`` dicts ``{'srcc': Gain, 'plcc': Gain}``.
    """
    predictions = np.atleast_2d(np.asarray(predictions, dtype=np.float64))
    items = np.arange(len(badness)) if items is None else np.asarray(list(items), dtype=int)
    stacked = np.concatenate([predictions, np.asarray(reference, dtype=np.float64)[None]])
    point = bootstrap_correlations(stacked, badness, [items])[0]  # (R + 1, 2): the statistics on the items themselves
    draws = scene_bootstrap(scenes, items, samples, seed, strata)
    values = bootstrap_correlations(stacked, badness, draws)  # (B, R + 1, 2)
    differences = values[:, :-1] - values[:, -1:]
    low, high = np.quantile(differences, [(1 - level) / 2, (1 + level) / 2], axis=0)  # (R, 2) each
    return [{a: Gain(float(point[r, k] - point[-1, k]), float(low[r, k]), float(high[r, k]))
             for k, (_, a) in enumerate(STATISTICS)} for r in range(len(predictions))]


def fold_losses(fold_gains: dict[str, dict[str, Gain]]) -> list[str]:
    """The distortion folds (``kind -> {statistic: Gain}``) that lose beyond their noise (upper
    end of the gain interval below 0), one phrase each."""
    return [f'distortion fold {kind}: {name} {gain[attr].estimate:+.3f} (interval up to {gain[attr].high:+.3f})'
            for kind, gain in fold_gains.items() for name, attr in STATISTICS if gain[attr].high < 0]


def admissible(summary: Summary, label_free: Summary, fold_gains: dict[str, dict[str, Gain]]) -> bool:
    """At least as good as label-free in pooled SRCC and plain PLCC on the scene folds, and no
    distortion fold loses beyond its noise (:func:`fold_losses`; ``fold_gains`` from
    :func:`paired_gain` on each fold's items)."""
    return all(getattr(summary.scene, a) >= getattr(label_free.scene, a) for _, a in STATISTICS) \
        and not fold_losses(fold_gains)


@dataclass
class Choice:
    """What :func:`choose` decided and why (the tables print it).

    Attributes:
        chosen: the recipe chosen; best: the admissible recipe of highest criterion.
        summaries: per candidate, its :class:`Summary` (candidate order).
        fold_gains: per candidate, per distortion fold, its :class:`Gain` over label-free.
        admissible: per candidate, :func:`admissible`.
        standard_error: the bootstrap standard error of the best's criterion.
        within: per candidate, whether its criterion is within one standard error of the best's.
    """

    chosen: Any
    best: Any
    summaries: dict[Any, Summary]
    fold_gains: dict[Any, dict[str, dict[str, Gain]]]
    admissible: dict[Any, bool]
    standard_error: float
    within: dict[Any, bool]


def _fold_gains(evaluations: Sequence[Evaluation], badness: np.ndarray, scenes: Sequence[str], strata: Sequence[str],
                samples: int, seed: int, level: float) -> list[dict[str, dict[str, Gain]]]:
    """Per evaluation, per distortion fold, the paired gain over the first (label-free) evaluation
    on that fold's items."""
    out: list[dict[str, dict[str, Gain]]] = [{} for _ in evaluations]
    for kind, reference in evaluations[0].distortion.items():
        items = np.flatnonzero(np.isfinite(reference))
        gains = paired_gain(np.stack([e.distortion[kind] for e in evaluations]), reference, badness, scenes, strata,
                            items, samples, level, seed)
        for row, gain in enumerate(gains):
            out[row][kind] = gain
    return out


def choose(evaluations: Sequence[Evaluation], badness: np.ndarray, scenes: Sequence[str],
           distortions: Sequence[str], samples: int = 1000, level: float = LEVEL, seed: int = 0) -> Choice:
    """The recipe the protocol chooses among ``evaluations`` (see the module docstring).

    The first evaluation must be the label-free heads (the reference of :func:`admissible`); all
    must share one ``subset``.
    """
    badness = np.asarray(badness, dtype=np.float64)
    recipes = [e.recipe for e in evaluations]
    summaries = {e.recipe: summarise(e, badness) for e in evaluations}
    strata = scene_strata(scenes, distortions)
    gains = dict(zip(recipes, _fold_gains(evaluations, badness, scenes, strata, samples, seed, level)))
    base = summaries[recipes[0]]
    allowed = {r: admissible(summaries[r], base, gains[r]) for r in recipes}
    best = max((r for r in recipes if allowed[r]), key=lambda r: (criterion(summaries[r]), -recipes.index(r)))
    draws = scene_bootstrap(scenes, evaluations[0].subset, samples, seed, strata)
    best_scene = evaluations[recipes.index(best)].scene  # (S, N): one row per seed
    values = bootstrap_correlations(best_scene, badness, draws).mean(axis=(1, 2))  # (B,): criterion, mean over seeds
    se = float(np.std(values, ddof=1))
    within = {r: criterion(summaries[r]) >= criterion(summaries[best]) - se for r in recipes}
    chosen = min((r for r in recipes if allowed[r] and within[r]), key=lambda r: (r.conservative_rank, recipes.index(r)))
    return Choice(chosen, best, summaries, gains, allowed, se, within)


def ship_decision(gain: dict[str, Gain], fold_gains: dict[str, dict[str, Gain]]) -> tuple[bool, str]:
    """Whether human-trained heads become the default, and why (one line).

    Args:
        gain: :func:`paired_gain` of the nested procedure's held-out predictions over label-free
            on the scene folds (all items).
        fold_gains: the chosen recipe's distortion folds, each as :func:`paired_gain` over label-free.
    """
    margin = NONINFERIORITY_MARGIN
    losses = [f'the {name} gain may be a loss beyond {margin} '
              f'({gain[a].estimate:+.3f}, interval from {gain[a].low:+.3f})'
              for name, a in STATISTICS if not gain[a].low > -margin]
    if not any(gain[a].low > 0 for _, a in STATISTICS):
        losses.append('no gain beyond the noise (' + ', '.join(
            f'{name} {gain[a].estimate:+.3f}, interval from {gain[a].low:+.3f}' for name, a in STATISTICS) + ')')
    losses += fold_losses(fold_gains)
    if losses:
        return False, 'label-free stays: ' + '; '.join(losses)
    gains = ', '.join(f'{name} {gain[a].estimate:+.3f} (interval from {gain[a].low:+.3f})' for name, a in STATISTICS)
    return True, (f'ships: nested gains over label-free {gains}: no loss beyond {margin}, a gain beyond the noise; '
                  'no distortion fold loses beyond its noise')
