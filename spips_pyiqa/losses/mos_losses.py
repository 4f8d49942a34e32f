r"""Learning SPIPS's heads from mean opinion scores: a pairwise preference loss and a prior.

**Pairwise preference (Bradley-Terry) loss.** Every pair :math:`(i, j)` of a batch whose human
scores differ is a 2AFC judgment: :math:`y_i > y_j`. The metric's prediction :math:`p`, oriented
like the labels (SPIPS for DMOS, minus SPIPS for MOS), predicts it with the Bradley-Terry
probability of the BAPPS path,

.. math::
    P(y_i > y_j) = \sigma\big((p_i - p_j) / T\big), \qquad T = \tau\, s_0,

with :math:`s_0` the standard deviation of the *starting* model's predictions on the first batch
(in the recipe: the whole training set), fixed from then on, so :math:`\tau` is unit-free; the loss
is the binary cross-entropy against :math:`\mathbb{1}[y_i > y_j]` (ties dropped). (A temperature
following the current spread makes the loss blind to the scale of the weights; cross-validation
found it clearly worse, see ``benchmark_results/human_heads_cv.md``.) Pairs can be restricted to images of the same scene (``groups``). Chosen over
pyiqa's ``PLCCLoss`` (asks for a linear relation with MOS, which SPIPS has no reason to have) and
``RankLoss`` (shrinking every weight lowers it: degenerate for a bias-free model) by the
cross-validation in ``benchmark_results/human_heads_cv.md``.

**Prior toward the starting heads.** With few human scores the ~1,150 head weights overfit, so
training can pull them toward the heads it started from:

.. math::
    R = \alpha \Big( \operatorname{mean}_m \frac{\lVert w_m - w_m^0 \rVert^2}{\lVert w_m^0 \rVert^2}
        + \operatorname{mean}_g (\log \lambda_g - \log \lambda_g^0)^2 \Big)

over the learned 1x1 heads :math:`w_m` (eqs. 9-11) and the fusion weights :math:`\lambda` (eq. 12).

References:
    R. A. Bradley, M. E. Terry, "Rank analysis of incomplete block designs", Biometrika 1952.
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric", CVPR
    2018 (2AFC training). Lao & Yu, "SPIPS", 2025, eqs. (9)-(12).
"""

import copy

import torch
import torch.nn.functional as F
from pyiqa.utils.registry import LOSS_REGISTRY
from torch import nn

__all__ = ['HeadsPrior', 'PairwisePreferenceLoss', 'pairwise_preference_loss']


def pairwise_preference_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    temperature: float | torch.Tensor,
    groups: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Bradley-Terry loss over all (or all same-group) pairs with different human scores.

    Args:
        pred: the metric's predictions, oriented like ``target``.
        target: human scores.
        temperature: :math:`T`, in the units of ``pred``.
        groups: optional group id per item (e.g. scene); only pairs within a group count.

    Shape:
        - pred, target: :math:`(N, 1)` or :math:`(N,)`; groups: :math:`(N,)`.
        - Output: scalar; 0 (with a gradient) when no pair qualifies.
    """
    d, b = pred.reshape(-1), target.reshape(-1).to(pred)
    if d.shape != b.shape:
        raise ValueError(f'pred and target differ in size: {tuple(d.shape)} vs {tuple(b.shape)}')
    logits = (d[:, None] - d[None, :]) / temperature
    diff = b[:, None] - b[None, :]
    valid = diff != 0
    if groups is not None:
        groups = groups.reshape(-1).to(d.device)
        valid &= groups[:, None] == groups[None, :]
    if not valid.any():
        return d.sum() * 0
    return F.binary_cross_entropy_with_logits(logits[valid], (diff[valid] > 0).to(d))


@LOSS_REGISTRY.register()
class PairwisePreferenceLoss(nn.Module):
    r"""pyiqa loss wrapper of :func:`pairwise_preference_loss` (``mos_loss_opt: {type: ...}``).

    Args:
        temperature: :math:`\tau`, relative to the spread :math:`s_0` of the predictions in the
            first call (kept in the buffer ``scale``, saved with the loss state).
        loss_weight: factor, as in pyiqa's losses.

    Shape:
        - pred, target: :math:`(N, 1)`; groups: optional :math:`(N,)`.
        - Output: scalar.
    """

    def __init__(self, temperature: float = 0.5, loss_weight: float = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature, self.loss_weight = temperature, loss_weight
        self.register_buffer('scale', torch.tensor(float('nan')))

    def forward(self, pred: torch.Tensor, target: torch.Tensor, groups: torch.Tensor | None = None) -> torch.Tensor:
        if torch.isnan(self.scale):
            spread = pred.detach().std() if pred.numel() > 1 else pred.detach().abs().mean()
            self.scale.fill_(float(spread.clamp_min(1e-6)))
        return self.loss_weight * pairwise_preference_loss(pred, target, self.temperature * self.scale, groups)


class HeadsPrior(nn.Module):
    r"""Penalty :math:`R` on the change of SPIPS's heads from a frozen copy of their start.

    Args:
        heads: the :class:`~spips_pyiqa.archs.quality_heads.QualityHeads` being trained; their
            current values are copied as the start :math:`w^0, \lambda^0`.
        strength: :math:`\alpha`; 0 disables the prior.

    Shape:
        - Output of ``forward(heads)``: scalar.
    """

    def __init__(self, heads: nn.Module, strength: float):
        super().__init__()
        if strength < 0:
            raise ValueError(f'prior strength must be >= 0, got {strength}')
        self.strength = strength
        self.start = copy.deepcopy(heads).requires_grad_(False)

    def forward(self, heads: nn.Module) -> torch.Tensor:
        terms = [
            (conv.weight - conv0.weight).pow(2).sum() / conv0.weight.pow(2).sum().clamp_min(1e-12)
            for g, head in heads.heads.items()
            for conv, conv0 in zip(head.convs, self.start.heads[g].convs)
        ]
        lam, lam0 = heads.fusion.weights, self.start.fusion.weights
        fusion = (lam.log() - lam0.log()).pow(2).mean()
        return self.strength * (torch.stack(terms).mean() + fusion)
