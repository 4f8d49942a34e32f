r"""The leaderboard protocol for choosing anything from human scores: grouped folds by scene,
pooled out-of-fold correlations, and intervals from a bootstrap over scenes.

Leaderboards score a metric as *one data set*: SRCC and pyiqa's plain PLCC (``calculate_plcc``,
no fit) over every image at once. A choice made from human scores is therefore judged the same
way here:

* :func:`grouped_folds`: K folds of whole scenes (a scene is never split), scenes shuffled by a
  seed and dealt round-robin, so each test fold holds several scenes and the out-of-fold
  predictions of all folds form one held-out data set;
* :func:`pooled`: SRCC, plain PLCC, logistic-fit PLCC and KRCC of such predictions
  (:func:`~spips_pyiqa.metrics.correlation.correlations`), and :func:`per_group_srcc` beside it;
* :func:`scene_bootstrap` / :func:`bootstrap_correlations`: resample *scenes* with replacement
  (images of one scene are not independent), optionally within strata, and recompute pooled SRCC
  and plain PLCC of many predictions at once, for intervals and paired comparisons.

References:
    B. Efron, R. Tibshirani, "An Introduction to the Bootstrap", 1993 (cluster resampling).
    pyiqa (IQA-PyTorch) ``pyiqa/metrics/correlation_coefficient.py`` and its benchmark protocol.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from spips_pyiqa.metrics.correlation import correlations

__all__ = ['Pooled', 'bootstrap_correlations', 'grouped_folds', 'per_group_srcc', 'pooled', 'scene_bootstrap']


def grouped_folds(groups: Sequence[str], k: int, seed: int, subset: Sequence[int] | None = None) -> list[np.ndarray]:
    """Test indices of ``k`` folds over the items ``subset`` (default all), whole groups per fold.

    Groups (scenes) are shuffled by ``seed`` and dealt round-robin, so fold sizes in groups differ
    by at most one; the folds partition ``subset``.

    Raises:
        ValueError: ``k`` is not between 2 and the number of groups in ``subset``.
    """
    subset = np.arange(len(groups)) if subset is None else np.asarray(list(subset), dtype=int)
    names = sorted({groups[i] for i in subset})
    if not 2 <= k <= len(names):
        raise ValueError(f'grouped folds need 2 <= k <= {len(names)} groups, got k={k}')
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: rank % k for rank, j in enumerate(order)}
    return [np.array([i for i in subset if fold_of[groups[i]] == f], dtype=int) for f in range(k)]


@dataclass(frozen=True)
class Pooled:
    """Correlations of a set of predictions with the human scores, over all of them at once."""

    n: int
    srcc: float
    plcc: float
    plcc_fit: float
    krcc: float


def pooled(prediction: Sequence[float], badness: Sequence[float], fit: bool = True) -> Pooled:
    """SRCC, plain PLCC (pyiqa's ``calculate_plcc``), logistic-fit PLCC and KRCC of ``prediction``
    (a distance) against ``badness`` (DMOS-like), over every item at once. ``fit=False`` skips the
    logistic fit (``plcc_fit`` NaN), the slow part, where only the others are read."""
    c = correlations(prediction, badness, logistic=fit)
    return Pooled(c.n, c.srcc, c.plain_plcc, c.plcc if fit else float('nan'), c.krcc)


def per_group_srcc(prediction: np.ndarray, badness: np.ndarray, groups: Sequence[str]) -> dict[str, float]:
    """SRCC within each group (scene), for the tables beside the pooled numbers."""
    groups = np.asarray(groups)
    return {g: float(stats.spearmanr(prediction[groups == g], badness[groups == g]).statistic)
            for g in sorted(set(groups))}


def scene_bootstrap(groups: Sequence[str], subset: Sequence[int], samples: int, seed: int,
                    strata: Sequence[str] | None = None) -> list[np.ndarray]:
    """``samples`` resamples of ``subset``: its groups drawn with replacement, each drawn group
    contributing all its items (a group drawn twice counts twice).

    Args:
        strata: per item, its stratum (constant within a group); groups are then drawn within each
            stratum, as many as it has (a stratified cluster bootstrap: every resample keeps the
            design's mix, e.g. 3 multi-distortion scenes and 14 JPEG-only ones).
    """
    subset = np.asarray(list(subset), dtype=int)
    members: dict[str, list[int]] = {}
    layer: dict[str, str] = {}
    for i in subset:
        members.setdefault(groups[i], []).append(int(i))
        layer[groups[i]] = '' if strata is None else strata[i]
    layers = [sorted(g for g in members if layer[g] == s) for s in sorted(set(layer.values()))]
    rng = np.random.default_rng(seed)
    return [np.concatenate([members[names[j]] for names in layers for j in rng.integers(len(names), size=len(names))])
            for _ in range(samples)]


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean()
    return (x @ y) / np.sqrt((x * x).sum(axis=1) * (y @ y))


def bootstrap_correlations(predictions: np.ndarray, badness: np.ndarray, samples: Sequence[np.ndarray]) -> np.ndarray:
    """Pooled SRCC and plain PLCC of each row of ``predictions`` on each resample.

    Shape:
        - predictions: :math:`(R, N)`; badness: :math:`(N,)`; samples: index arrays into ``N``.
        - Output: :math:`(B, R, 2)`, last axis (SRCC, plain PLCC), for the ``B`` samples.
    """
    predictions, badness = np.asarray(predictions, dtype=np.float64), np.asarray(badness, dtype=np.float64)
    out = np.empty((len(samples), len(predictions), 2))
    for b, index in enumerate(samples):
        x, y = predictions[:, index], badness[index]
        out[b, :, 0] = _rowwise_pearson(stats.rankdata(x, axis=1), stats.rankdata(y))
        out[b, :, 1] = _rowwise_pearson(x, y)
    return out
