"""Agreement of a full-reference metric with opinion scores (MOS or DMOS), overall and per group.

The protocol of the IQA literature (VQEG 2000; pyiqa's ``benchmark_results.py``): score every
(distorted, reference) pair, then correlate the scores with the human labels. Scores are first made
*distances* (higher = worse; higher-better metrics such as PSNR/SSIM/VIF negated by
:func:`~spips_pyiqa.metrics.bapps_scores.to_distance`) and labels *badness* (DMOS as is, MOS
negated), so a metric that agrees with people has **positive** correlations (sign-corrected, not
absolute): :func:`~spips_pyiqa.metrics.correlation.correlations` gives PLCC (after the VQEG
logistic fit by default), SRCC and KRCC.

From Python, on a data set read by :func:`~spips_pyiqa.data.mos_prepare.read_scores`::

    import pyiqa
    from spips_pyiqa.data.mos_prepare import read_scores
    from spips_pyiqa.evaluation.mos import evaluate_mos

    rows = read_scores(root, root / 'scores.csv', 'dist_img', 'ref_img', 'dmos')
    result = evaluate_mos(pyiqa.create_metric('spips'), rows, root)   # labels are DMOS
    print(result['all'].srcc, {group: c.srcc for group, c in result.items()})

References
----------
VQEG, "Final report from the Video Quality Experts Group on the validation of objective models of
video quality assessment", 2000 (the 4-parameter logistic before PLCC).
"""

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from tqdm import tqdm

from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.mos_prepare import MosRow
from spips_pyiqa.metrics.bapps_scores import to_distance
from spips_pyiqa.metrics.correlation import Correlations, correlations

__all__ = ['agreement', 'evaluate_mos', 'pair_scores']

#: Key of the correlations over every item in :func:`agreement`'s result.
ALL = 'all'


def pair_scores(
    metric: Callable[[torch.Tensor, torch.Tensor], torch.Tensor | float],
    pairs: Sequence[tuple[Path, Path]],
    desc: str = '',
) -> NDArray:
    """Raw scores of a metric (a pyiqa metric, or any ``metric(target, ref)`` giving one score) on
    (target, reference) image files, read by :func:`~spips_pyiqa.data.image_io.load_image` (EXIF
    orientation applied, 16-bit kept), without gradients.

    ``desc``: label of a progress bar on stderr (none when empty).

    Shape:
        returns ``(len(pairs),)`` float64, in the order of ``pairs``.
    """
    scores = []
    for target, ref in tqdm(pairs, desc=desc, file=sys.stderr, leave=False, disable=not desc):
        with torch.no_grad():
            scores.append(float(metric(load_image(target), load_image(ref))))
    return np.array(scores, dtype=np.float64)


def agreement(
    scores: ArrayLike,
    lower_better: bool,
    labels: ArrayLike,
    labels_lower_better: bool = True,
    groups: ArrayLike | None = None,
    logistic: bool = True,
) -> dict[str, Correlations]:
    """Sign-corrected correlations of a metric's raw ``scores`` with human ``labels``.

    Args:
        lower_better: the metric's direction (pyiqa's ``metric.lower_better``).
        labels_lower_better: ``True`` for DMOS-like labels (higher = worse), ``False`` for MOS.
        groups: a group name per item (e.g. the distortion type); each group gets its own entry.
        logistic: PLCC after the VQEG logistic fit (``False``: plain Pearson, pyiqa's protocol).

    Returns:
        ``{'all': Correlations, group: Correlations, ...}``, groups in sorted order.

    Shape:
        scores, labels, groups: ``(N,)``.
    """
    distance = to_distance(scores, lower_better)
    badness = np.asarray(labels, dtype=np.float64) * (1.0 if labels_lower_better else -1.0)
    subsets = {ALL: np.ones(len(distance), bool)}
    if groups is not None:
        groups = np.asarray(groups)
        subsets.update({str(g): groups == g for g in sorted(set(groups.tolist()))})
    return {name: correlations(distance[mask], badness[mask], logistic) for name, mask in subsets.items()}


def evaluate_mos(
    metric: torch.nn.Module,
    rows: Sequence[MosRow],
    root: Path,
    ref_root: Path | None = None,
    labels_lower_better: bool = True,
    logistic: bool = True,
) -> dict[str, Correlations]:
    """Score every row of a MOS data set with a pyiqa metric and correlate with its labels.

    ``rows`` hold paths relative to ``root`` (references relative to ``ref_root``, default ``root``);
    one entry per distortion type is added when the rows name one (:func:`agreement`).
    """
    root = Path(root)
    ref_root = root if ref_root is None else Path(ref_root)
    scores = pair_scores(metric, [(root / row.dist, ref_root / row.ref) for row in rows])
    kinds = [row.distortion for row in rows]
    return agreement(scores, bool(metric.lower_better), [row.mos for row in rows], labels_lower_better,
                     kinds if any(kinds) else None, logistic)
