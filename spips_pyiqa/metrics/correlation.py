r"""Correlation of a metric with human scores: SRCC, KRCC and PLCC (raw or after a logistic fit).

One implementation for every table: LIVE/MOS agreement, BAPPS preference correlations, the
cross-validation of learned heads.

* SRCC (Spearman) and KRCC (Kendall tau-b), ``scipy.stats``;
* plain PLCC: Pearson without any fit, pyiqa's ``calculate_plcc`` itself (the number pyiqa's
  leaderboards print; it rewards scores that are linear in the human scores);
* PLCC (Pearson) between the human scores and the metric's values mapped by the VQEG 4-parameter
  logistic :math:`f(x) = \beta_2 + (\beta_1 - \beta_2) / (1 + e^{-(x - \beta_3)/|\beta_4|})`
  fitted by least squares (on standardised values, for conditioning); negative when the fitted
  curve decreases. Fewer than :data:`MIN_FIT_POINTS` points, a fit that does not converge, or
  ``logistic=False`` gives the plain (linear) PLCC, flagged in :class:`Correlations`.

References:
    VQEG, "Final report from the Video Quality Experts Group on the validation of objective models
    of video quality assessment", 2000/2003 (logistic fit).
    E. C. Fieller, H. O. Hartley, E. S. Pearson, "Tests for rank correlation coefficients. I",
    Biometrika 1957 (standard error of Spearman's rho).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pyiqa.metrics import calculate_plcc
from scipy import optimize, special, stats

__all__ = ['MIN_FIT_POINTS', 'Correlations', 'correlations', 'fit_logistic', 'logistic4', 'srcc_interval']

#: Fewer points than this (4 parameters + 1) and PLCC is computed without the logistic fit.
MIN_FIT_POINTS = 5


def logistic4(x, b1, b2, b3, b4):
    r"""VQEG's monotone 4-parameter logistic; :math:`\beta_1, \beta_2` are its two asymptotes."""
    return b2 + (b1 - b2) * special.expit((np.asarray(x) - b3) / np.abs(b4))


def fit_logistic(x: Sequence[float], y: Sequence[float]) -> Callable[[np.ndarray], np.ndarray] | None:
    """Least-squares fit of :func:`logistic4` mapping ``x`` to ``y``; ``None`` if it fails.

    Returns the fitted function of ``x`` (the standardisation is inside it).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    scale = x.std()
    if len(x) < MIN_FIT_POINTS or scale == 0 or y.std() == 0:
        return None
    z = (x - x.mean()) / scale
    rising = stats.spearmanr(z, y).statistic >= 0
    start = [y.max(), y.min(), 0.0, 1.0] if rising else [y.min(), y.max(), 0.0, 1.0]
    try:
        params, _ = optimize.curve_fit(logistic4, z, y, p0=start, maxfev=20000)
    except (RuntimeError, optimize.OptimizeWarning, ValueError):
        return None
    if not np.all(np.isfinite(params)):
        return None
    mean = x.mean()
    return lambda values: logistic4((np.asarray(values, dtype=np.float64) - mean) / scale, *params)


@dataclass(frozen=True)
class Correlations:
    """Sign-corrected PLCC (after the logistic fit when ``logistic``), SRCC and KRCC; ``n`` points;
    ``plain_plcc``: Pearson without any fit, as pyiqa's ``calculate_plcc`` (NaN where not computed)."""

    n: int
    plcc: float
    srcc: float
    krcc: float
    logistic: bool
    plain_plcc: float = float('nan')


def correlations(distance: Sequence[float], human: Sequence[float], logistic: bool = True) -> Correlations:
    """Correlations of a metric's ``distance`` (higher = worse) with ``human`` (e.g. DMOS).

    Args:
        logistic: PLCC after the VQEG logistic fit (``False``: plain Pearson).

    Shape:
        distance, human: ``(N,)``; NaN where a correlation is undefined (``N < 3``, constant input).
    """
    x, y = np.asarray(distance, dtype=np.float64), np.asarray(human, dtype=np.float64)
    if len(x) != len(y):
        raise ValueError(f'length mismatch: {len(x)} distances, {len(y)} human scores')
    nan = float('nan')
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return Correlations(len(x), nan, nan, nan, False)
    plain = float(calculate_plcc(x, y))
    fitted = fit_logistic(x, y) if logistic else None
    if fitted is None:
        plcc, logistic = plain, False
    else:
        predicted = fitted(x)
        falling = fitted(np.array([x.max()]))[0] < fitted(np.array([x.min()]))[0]
        if predicted.std() == 0:
            plcc, logistic = plain, False
        else:
            plcc = abs(stats.pearsonr(predicted, y).statistic) * (-1 if falling else 1)
            logistic = True
    return Correlations(
        n=len(x),
        plcc=float(plcc),
        srcc=float(stats.spearmanr(x, y).statistic),
        krcc=float(stats.kendalltau(x, y).statistic),
        logistic=logistic,
        plain_plcc=plain,
    )


def srcc_interval(srcc: float, n: int, level: float = 0.95) -> tuple:
    """Approximate confidence interval of a Spearman correlation: Fisher's z with the standard
    error ``sqrt(1.06 / (n - 3))`` of Fieller, Hartley & Pearson (1957); NaN for ``n <= 3``."""
    if n <= 3 or not np.isfinite(srcc):
        return float('nan'), float('nan')
    half = stats.norm.ppf(0.5 + level / 2) * np.sqrt(1.06 / (n - 3))
    z = np.arctanh(np.clip(srcc, -0.999999, 0.999999))
    return float(np.tanh(z - half)), float(np.tanh(z + half))
