"""Scoring of BAPPS human judgments: 2AFC agreement, JND mAP, and preference correlations.

This module is the numeric core of the BAPPS evaluation (``python -m spips_pyiqa evaluate``). It
knows nothing about files or models: it turns a metric's distances and the human judgments into
numbers.

Conventions
-----------
* ``d0``, ``d1``, ``d`` are *distances*: lower means "more similar to the reference". A metric whose
  score is higher-better (SSIM, PSNR, ...) is converted with :func:`to_distance` first.
* ``h`` is BAPPS' 2AFC judgment: the fraction of raters who preferred ``p1`` (i.e. judged ``p1``
  closer to the reference). It is a multiple of 1/5 in val and 1/2 in train.
* ``same`` is BAPPS' JND judgment: the fraction of raters who judged ``(p0, p1)`` identical.

Protocols (Zhang et al. 2018, the LPIPS repository's ``score_2afc_dataset`` /
``score_jnd_dataset``):

* 2AFC, per triplet: ``1[d0 < d1] (1 - h) + 1[d1 < d0] h + 0.5 1[d0 = d1]``: the fraction of raters
  the metric agrees with, a tie counting half. A category's 2AFC score is the mean over its
  triplets.
* JND: pairs are sorted by ascending distance, each pair contributes ``same`` true positives and
  ``1 - same`` false positives; the score is the area under the precision/recall curve, computed as
  PASCAL VOC's all-point interpolated average precision (precision made monotone from the right).
  Distances that tie form one operating point (see :func:`jnd_map`).
* Correlations: the metric's predicted preference for ``p1`` is ``d0 - d1`` (positive when ``p1`` is
  closer), correlated with ``h`` by PLCC / SRCC / KRCC (:mod:`spips_pyiqa.metrics.correlation`,
  plain PLCC). ``d0 - d1`` is used rather
  than pyiqa's training-time ``sigmoid(d0 - d1)`` (``BAPPSModel``) because it has no scale to
  choose; SRCC and KRCC are identical for both (the sigmoid is monotone).

References
----------
R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness of Deep
Features as a Perceptual Metric." CVPR 2018 (BAPPS data set, 2AFC and JND protocols).
M. Everingham et al. "The PASCAL Visual Object Classes (VOC) Challenge." IJCV 2010 (AP).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from spips_pyiqa.metrics.correlation import Correlations, correlations

__all__ = [
    'CategoryScore',
    'category_average',
    'jnd_map',
    'markdown_table',
    'preference_correlations',
    'preference_for_p1',
    'score_2afc_category',
    'score_jnd_category',
    'to_distance',
    'two_afc_mean',
    'two_afc_score',
]

FloatArray = NDArray[np.float64]


def _as_vector(name: str, values: ArrayLike) -> FloatArray:
    """Return ``values`` as a 1-D float64 array, refusing empty or multi-dimensional input."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f'{name} must be a non-empty 1-D sequence, got shape {array.shape}')
    return array


def _as_vectors(**named: ArrayLike) -> list[FloatArray]:
    """Return each argument as a 1-D float64 array; all must have the same length."""
    arrays = [_as_vector(name, values) for name, values in named.items()]
    lengths = {name: len(array) for name, array in zip(named, arrays)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f'length mismatch: {lengths}')
    return arrays


def _check_fraction(name: str, values: FloatArray) -> None:
    """Raise unless every value is a fraction of raters, i.e. lies in [0, 1]."""
    if np.any((values < 0) | (values > 1)) or np.any(np.isnan(values)):
        raise ValueError(f'{name} must lie in [0, 1] (a fraction of raters)')


def to_distance(scores: ArrayLike, lower_better: bool) -> FloatArray:
    """Turn a metric's scores into distances (lower = more similar), the convention of this module.

    Args:
        scores: The metric's output for each (distorted, reference) pair.
        lower_better: ``True`` for distance-like metrics (LPIPS, DISTS), ``False`` for
            similarity-like ones (SSIM, PSNR); the latter are negated, which preserves every
            ranking.

    Shape:
        scores: ``(N,)``; returns ``(N,)``.
    """
    values = _as_vector('scores', scores)
    return values if lower_better else -values


def two_afc_score(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> FloatArray:
    """Per-triplet 2AFC score: the fraction of raters agreeing with the metric (ties count 0.5).

    Args:
        d0: Distance between ``p0`` and the reference.
        d1: Distance between ``p1`` and the reference.
        h: Fraction of raters who preferred ``p1``.

    Shape:
        d0, d1, h: ``(N,)``; returns ``(N,)`` with values in [0, 1].
    """
    d0, d1, h = _as_vectors(d0=d0, d1=d1, h=h)
    _check_fraction('h', h)
    return (d0 < d1) * (1.0 - h) + (d1 < d0) * h + 0.5 * (d0 == d1)


def two_afc_mean(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> float:
    """2AFC score of a set of triplets (e.g. one BAPPS category): the mean of :func:`two_afc_score`.

    Shape:
        d0, d1, h: ``(N,)``; returns a scalar in [0, 1] (BAPPS tables print it x100).
    """
    return float(np.mean(two_afc_score(d0, d1, h)))


def jnd_map(d: ArrayLike, same: ArrayLike) -> float:
    """JND mean average precision: how well small distances pick out pairs judged "same".

    Pairs are sorted by ascending distance; cumulative true positives are the ``same`` fractions,
    false positives ``1 - same``; recall = TP / sum(same), precision = TP / (TP + FP). The result is
    the all-point interpolated average precision (VOC 2010+): precision is replaced by its running
    maximum from the right and summed over the recall steps.

    Tied distances are one threshold: the curve only gets a point after the last pair of a tie
    group. Without ties this is exactly the LPIPS protocol; with ties the LPIPS code
    (``np.argsort``) depends on the input order, this function does not.

    Args:
        d: Distance between the two images of each pair.
        same: Fraction of raters who judged the pair identical.

    Shape:
        d, same: ``(N,)``; returns a scalar in [0, 1].

    Raises:
        ValueError: on length mismatch, ``same`` outside [0, 1], or no "same" judgment at all
            (recall is then undefined).
    """
    d, same = _as_vectors(d=d, same=same)
    _check_fraction('same', same)
    total_same = same.sum()
    if total_same == 0:
        raise ValueError('jnd_map needs at least one pair judged "same" (sum(same) > 0)')
    order = np.argsort(d, kind='stable')
    d_sorted, same_sorted = d[order], same[order]
    true_pos = np.cumsum(same_sorted)
    false_pos = np.cumsum(1.0 - same_sorted)
    last_of_tie = np.append(d_sorted[1:] != d_sorted[:-1], True)
    recall = true_pos[last_of_tie] / total_same
    precision = true_pos[last_of_tie] / (true_pos + false_pos)[last_of_tie]
    return _all_point_average_precision(recall, precision)


def _all_point_average_precision(recall: FloatArray, precision: FloatArray) -> float:
    """Area under the precision envelope (VOC all-point interpolation) of a recall-sorted PR curve.

    Shape:
        recall, precision: ``(K,)`` with ``recall`` non-decreasing; returns a scalar.
    """
    recall = np.concatenate(([0.0], recall, [1.0]))
    precision = np.concatenate(([0.0], precision, [0.0]))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(recall) * envelope[1:]))


def preference_for_p1(d0: ArrayLike, d1: ArrayLike) -> FloatArray:
    """The metric's predicted preference for ``p1``: ``d0 - d1`` (positive when ``p1`` is closer).

    Shape:
        d0, d1: ``(N,)``; returns ``(N,)``.
    """
    d0, d1 = _as_vectors(d0=d0, d1=d1)
    return d0 - d1


def preference_correlations(d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> Correlations:
    """Correlate the metric's preference for ``p1`` (:func:`preference_for_p1`) with ``h``.

    A metric that agrees with people gives positive values. Constant input gives NaN (scipy's
    convention: a correlation is undefined there).

    Shape:
        d0, d1, h: ``(N,)`` with ``N >= 2``; returns three scalars in [-1, 1].
    """
    d0, d1, h = _as_vectors(d0=d0, d1=d1, h=h)
    _check_fraction('h', h)
    return correlations(preference_for_p1(d0, d1), h, logistic=False)


@dataclass(frozen=True)
class CategoryScore:
    """One row of a BAPPS result table.

    Attributes:
        task: ``'2afc'`` or ``'jnd'``.
        category: BAPPS category, e.g. ``'traditional'`` or ``'superres'``.
        n: Number of triplets (2AFC) or pairs (JND) scored.
        values: Metric name -> value in its natural range, e.g. ``{'2afc': 0.77, 'plcc': ...}`` or
            ``{'jnd_map': 0.61}``.
    """

    task: str
    category: str
    n: int
    values: dict[str, float]


def score_2afc_category(category: str, d0: ArrayLike, d1: ArrayLike, h: ArrayLike) -> CategoryScore:
    """Score one 2AFC category: 2AFC agreement plus PLCC/SRCC/KRCC of the preference with ``h``.

    Shape:
        d0, d1, h: ``(N,)``; returns one :class:`CategoryScore` with keys
        ``'2afc', 'plcc', 'srcc', 'krcc'``.
    """
    c = preference_correlations(d0, d1, h)
    values = {'2afc': two_afc_mean(d0, d1, h), 'plcc': c.plcc, 'srcc': c.srcc, 'krcc': c.krcc}
    return CategoryScore(task='2afc', category=category, n=len(np.asarray(d0)), values=values)


def score_jnd_category(category: str, d: ArrayLike, same: ArrayLike) -> CategoryScore:
    """Score one JND category by :func:`jnd_map`.

    Shape:
        d, same: ``(N,)``; returns one :class:`CategoryScore` with key ``'jnd_map'``.
    """
    return CategoryScore(
        task='jnd', category=category, n=len(np.asarray(d)), values={'jnd_map': jnd_map(d, same)}
    )


def category_average(scores: Sequence[CategoryScore], key: str) -> float:
    """Unweighted mean of ``values[key]`` over categories: each counts once, whatever its size.

    Shape:
        scores: ``K`` rows that all have ``key``; returns a scalar.
    """
    if not scores:
        raise ValueError('category_average needs at least one CategoryScore')
    return float(np.mean([score.values[key] for score in scores]))


def markdown_table(scores: Sequence[CategoryScore], scale: float = 100.0) -> str:
    """Render rows as a Markdown table, values multiplied by ``scale`` (x100 as BAPPS tables print).

    Columns are task, category, n, then every value key in first-seen order; a row lacking a key
    shows an empty cell.

    Shape:
        scores: ``K`` rows; returns a string of ``K + 2`` lines.
    """
    keys = list(dict.fromkeys(key for score in scores for key in score.values))
    header = ['task', 'category', 'n', *keys]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for score in scores:
        cells = [f'{score.values[key] * scale:.2f}' if key in score.values else '' for key in keys]
        lines.append('| ' + ' | '.join([score.task, score.category, str(score.n), *cells]) + ' |')
    return '\n'.join(lines)
