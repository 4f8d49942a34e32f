r"""Which recipe wins, and whether its heads ship: the leaderboard protocol turned into rules.

Every candidate recipe has out-of-fold predictions (:class:`Evaluation`): on grouped scene folds
(several seeds) and on distortion folds (train without one distortion type, test on it). From
them, as leaderboards measure (:mod:`spips_pyiqa.metrics.grouped_cv`):

* :func:`summarise`: pooled SRCC, pyiqa's plain PLCC, fitted PLCC and KRCC over all held-out
  predictions of the scene folds (mean over seeds), and per distortion fold;
* :func:`admissible`: a recipe may replace the label-free heads only if it is at least as good in
  pooled SRCC *and* plain PLCC on the scene folds, and in both on every distortion fold up to
  :data:`DISTORTION_MARGIN` (the gblur and wnoise folds hold 12-15 images of 3 scenes: 0.01 is
  about one swapped pair there);
* :func:`choose`: the admissible recipe with the best criterion (mean of pooled SRCC and plain
  PLCC) is the *best*; a bootstrap over scenes (stratified by each scene's set of distortion
  types: :func:`scene_strata`) gives the ``level`` interval of the best's criterion, and every
  recipe whose criterion lies within it (at or above its lower end) counts as tied with the best;
  among those the most conservative one (:attr:`Recipe.conservative_rank
  <spips_pyiqa.recipes.human_heads.Recipe.conservative_rank>`: fewer parts learning, stronger
  prior) is chosen. Label-free is the most conservative of all;
* :func:`ship_decision`: the chosen heads become a variant's default only where the *nested*
  estimate of the whole procedure beats label-free in pooled SRCC and plain PLCC by more than the
  noise of 17 scenes (:func:`paired_gain_low`: the lower end of the ``level`` interval of the gain,
  a paired bootstrap over scenes, is above 0 for both) and the chosen recipe's distortion folds do
  not lose (beyond the margin), in either. The burden of proof lies on moving away from the
  label-free heads, whose deep parts rest on ~150k BAPPS judgments.

References:
    L. Breiman, J. Friedman, R. Olshen, C. Stone, "Classification and Regression Trees", 1984
    (the one-standard-error rule: the simplest model within the noise of the best).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spips_pyiqa.metrics.grouped_cv import Pooled, bootstrap_correlations, pooled, scene_bootstrap

__all__ = ['DISTORTION_MARGIN', 'Choice', 'Evaluation', 'Summary', 'admissible', 'choose', 'criterion',
           'paired_gain_low', 'scene_strata', 'ship_decision', 'summarise']


#: How far below label-free a distortion fold's SRCC or plain PLCC may be and still "not lose".
DISTORTION_MARGIN = 0.01


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


def _mean(values: Sequence[Pooled]) -> Pooled:
    return Pooled(values[0].n, *(float(np.mean([getattr(v, f) for v in values])) for f in ('srcc', 'plcc', 'plcc_fit', 'krcc')))


def summarise(evaluation: Evaluation, badness: np.ndarray) -> Summary:
    """:class:`Summary` of ``evaluation`` against ``badness`` (DMOS-like, all items)."""
    s = evaluation.subset
    scene = _mean([pooled(row[s], badness[s]) for row in evaluation.scene])
    distortion = {}
    for kind, prediction in evaluation.distortion.items():
        held = np.isfinite(prediction)
        distortion[kind] = pooled(prediction[held], badness[held])
    return Summary(scene, distortion)


def criterion(summary: Summary) -> float:
    """Mean of pooled SRCC and plain PLCC on the scene folds: what a leaderboard would print."""
    return (summary.scene.srcc + summary.scene.plcc) / 2


def _no_loss(a: Pooled, b: Pooled, margin: float = 0.0) -> bool:
    return a.srcc >= b.srcc - margin and a.plcc >= b.plcc - margin


def admissible(summary: Summary, label_free: Summary) -> bool:
    """At least as good as label-free in pooled SRCC and plain PLCC on the scene folds, and on
    every distortion fold up to :data:`DISTORTION_MARGIN`."""
    return _no_loss(summary.scene, label_free.scene) and all(
        _no_loss(p, label_free.distortion[k], DISTORTION_MARGIN) for k, p in summary.distortion.items())


@dataclass
class Choice:
    """What :func:`choose` decided and why (the tables print it).

    Attributes:
        chosen: the recipe chosen; best: the admissible recipe of highest criterion.
        summaries: per candidate, its :class:`Summary` (candidate order).
        admissible: per candidate, :func:`admissible`.
        tied: per candidate, whether its criterion lies within the bootstrap interval of ``best``'s.
        gap_low: per candidate, the lower end of that interval minus its criterion (<= 0: tied).
    """

    chosen: Any
    best: Any
    summaries: dict[Any, Summary]
    admissible: dict[Any, bool]
    tied: dict[Any, bool]
    gap_low: dict[Any, float]


def scene_strata(scenes: Sequence[str], distortions: Sequence[str]) -> list[str]:
    """Per item, the distortion types its scene has (``'gblur+jpeg+wnoise'``, ``'jpeg'``): the
    strata of the bootstrap, so every resample keeps the data's mix of scene kinds."""
    kinds: dict[str, set] = {}
    for scene, kind in zip(scenes, distortions):
        kinds.setdefault(scene, set()).add(kind)
    return ['+'.join(sorted(kinds[scene])) for scene in scenes]


def choose(evaluations: Sequence[Evaluation], badness: np.ndarray, scenes: Sequence[str],
           distortions: Sequence[str], samples: int = 1000, level: float = 0.95, seed: int = 0) -> Choice:
    """The recipe the protocol chooses among ``evaluations`` (see the module docstring).

    The first evaluation must be the label-free heads (the reference of :func:`admissible`); all
    must share one ``subset``.
    """
    badness = np.asarray(badness, dtype=np.float64)
    recipes = [e.recipe for e in evaluations]
    summaries = {e.recipe: summarise(e, badness) for e in evaluations}
    base = summaries[recipes[0]]
    allowed = {r: admissible(summaries[r], base) for r in recipes}
    best = max((r for r in recipes if allowed[r]), key=lambda r: (criterion(summaries[r]), -recipes.index(r)))
    draws = scene_bootstrap(scenes, evaluations[0].subset, samples, seed, scene_strata(scenes, distortions))
    seeds = len(evaluations[0].scene)
    stacked = np.concatenate([e.scene for e in evaluations])
    values = bootstrap_correlations(stacked, badness, draws).mean(axis=2)  # (B, C*S): (SRCC + PLCC) / 2
    per_recipe = values.reshape(len(draws), len(recipes), seeds).mean(axis=2)
    low = float(np.quantile(per_recipe[:, recipes.index(best)], (1 - level) / 2))
    gap_low = {r: low - criterion(summaries[r]) for r in recipes}
    tied = {r: r == best or gap_low[r] <= 0 for r in recipes}
    chosen = min((r for r in recipes if allowed[r] and tied[r]), key=lambda r: (r.conservative_rank, recipes.index(r)))
    return Choice(chosen, best, summaries, allowed, tied, gap_low)


def paired_gain_low(prediction: np.ndarray, reference: np.ndarray, badness: np.ndarray, scenes: Sequence[str],
                    distortions: Sequence[str], samples: int = 1000, level: float = 0.95, seed: int = 0) -> Pooled:
    """Lower ends of the ``level`` intervals of the pooled SRCC and plain PLCC gain of
    ``prediction`` over ``reference`` (both distances of the same items): a paired, stratified
    bootstrap over scenes (:func:`scene_strata`), both scored on each resample. Only ``srcc`` and
    ``plcc`` of the result are set (the others are NaN).

    Shape:
        - prediction, reference, badness: :math:`(N,)`; scenes, distortions: ``N`` labels.
    """
    draws = scene_bootstrap(scenes, range(len(badness)), samples, seed, scene_strata(scenes, distortions))
    values = bootstrap_correlations(np.stack([prediction, reference]), badness, draws)  # (B, 2, 2)
    low = np.quantile(values[:, 0] - values[:, 1], (1 - level) / 2, axis=0)
    return Pooled(len(badness), float(low[0]), float(low[1]), float('nan'), float('nan'))


def ship_decision(nested: Pooled, label_free: Pooled, distortion: dict[str, Pooled],
                  label_free_distortion: dict[str, Pooled], gain_low: Pooled) -> tuple[bool, str]:
    """Whether human-trained heads become the default, and why (one line).

    Args:
        nested: pooled held-out correlations of the nested procedure on the scene folds.
        label_free: the label-free heads on the same items.
        distortion, label_free_distortion: per distortion fold, the chosen recipe and label-free.
        gain_low: :func:`paired_gain_low` of the nested predictions over label-free.
    """
    statistics = (('SRCC', 'srcc'), ('plain PLCC', 'plcc'))
    losses = [f'nested pooled {name} {getattr(nested, attr):.3f} <= label-free {getattr(label_free, attr):.3f}'
              for name, attr in statistics if not getattr(nested, attr) > getattr(label_free, attr)]
    losses += [f'the {name} gain is within the noise (interval from {getattr(gain_low, attr):+.3f})'
               for name, attr in statistics
               if getattr(nested, attr) > getattr(label_free, attr) and not getattr(gain_low, attr) > 0]
    losses += [f'distortion fold {kind}: {name} {getattr(p, attr):.3f} < label-free '
               f'{getattr(label_free_distortion[kind], attr):.3f} - {DISTORTION_MARGIN}'
               for kind, p in distortion.items() for name, attr in statistics
               if getattr(p, attr) < getattr(label_free_distortion[kind], attr) - DISTORTION_MARGIN]
    if losses:
        return False, 'label-free stays: ' + '; '.join(losses)
    return True, (f'ships: nested pooled SRCC {nested.srcc:.3f} > {label_free.srcc:.3f} and plain PLCC '
                  f'{nested.plcc:.3f} > {label_free.plcc:.3f}, both gains above the noise (intervals from '
                  f'{gain_low.srcc:+.3f}, {gain_low.plcc:+.3f}); no distortion fold loses beyond {DISTORTION_MARGIN}')
