r"""SPIPS's heads on pooled features as a batch of small linear models: the fast training form.

On channel means (:mod:`~spips_pyiqa.recipes.heads_features`) with non-negative weights, the
heads of eqs. (9)-(12) reduce to

.. math::
    \mathrm{SPIPS} = \sum_g \lambda_g \, \bar X_g w_g, \qquad \lambda = \mathrm{softmax}(\theta),

with :math:`\bar X_g` the concatenated channel means of group g's maps and :math:`w_g` the
concatenated 1x1 weights of its maps. :class:`LinearHeads` holds exactly those parameters for
``B`` independent models at once (one per (recipe, fold) of a cross-validation), and
:func:`train_batch` trains them together: every loss is a per-model sum, so each model gets
exactly the gradients, and Adam (elementwise) exactly the steps, it would get alone; the
thousands of trainings of the nested cross-validation become a few batched runs.
:meth:`LinearHeads.write` puts one model back into a
:class:`~spips_pyiqa.archs.quality_heads.QualityHeads`.

Per model ``b`` (training items :math:`I_b`), the loss is the pairwise Bradley-Terry loss of
:func:`~spips_pyiqa.losses.mos_losses.pairwise_preference_loss` over the pairs of :math:`I_b`
(optionally of one scene), plus ``linear_b`` x pyiqa's ``plcc_loss`` :math:`(1 - r)/2` over
:math:`I_b`, plus :class:`~spips_pyiqa.losses.mos_losses.HeadsPrior`'s penalty; tested equal to
those functions one model at a time.

References:
    Lao & Yu, "SPIPS", 2025, eqs. (9)-(12). D. P. Kingma, J. Ba, "Adam", ICLR 2015.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spips_pyiqa.archs.quality_heads import QualityHeads

__all__ = ['Batch', 'LinearHeads', 'stacked_means', 'train_batch']


def stacked_means(means: Mapping[str, Sequence[torch.Tensor]], groups: Sequence[str]) -> dict[str, torch.Tensor]:
    r"""Per group, the channel means of its maps side by side.

    Shape:
        means[g]: tensors :math:`(N, C_m)`; output[g]: :math:`(N, \sum_m C_m)`.
    """
    return {g: torch.cat(list(means[g]), dim=1).to(torch.float32) for g in groups}


class LinearHeads(nn.Module):
    """``copies`` models, each starting as ``heads``: one weight row per group, one logit row.

    Args:
        heads: the heads to start from (left unchanged).
        copies: number of models ``B``.
    """

    def __init__(self, heads: QualityHeads, copies: int = 1):
        super().__init__()
        self.groups = tuple(heads.heads)  # fusion order (a ParameterDict need not keep it)
        self.sizes = {g: [conv.weight.numel() for conv in head.convs] for g, head in heads.heads.items()}
        self.weight = nn.ParameterDict({
            g: nn.Parameter(torch.cat([conv.weight.detach().reshape(-1) for conv in head.convs]).repeat(copies, 1))
            for g, head in heads.heads.items()
        })
        self.logits = nn.Parameter(heads.fusion.logits.detach().repeat(copies, 1))

    def forward(self, x: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """SPIPS of every item under every model.

        Shape:
            x[g]: :math:`(N, C_g)` (:func:`stacked_means`); output :math:`(B, N)`.
        """
        distances = torch.stack([self.weight[g] @ x[g].T for g in self.groups], dim=2)  # (B, N, G)
        return (distances * torch.softmax(self.logits, dim=1)[:, None, :]).sum(dim=2)

    @torch.no_grad()
    def clamp_weights(self) -> None:
        """Keep head weights non-negative (where the pooled identity holds)."""
        for w in self.weight.values():
            w.clamp_(min=0)

    def prior(self, start: 'LinearHeads') -> torch.Tensor:
        r"""Per model, :class:`~spips_pyiqa.losses.mos_losses.HeadsPrior`'s penalty before its
        strength: mean over maps of the relative squared change + mean over groups of the squared
        log-ratio of :math:`\lambda`, relative to ``start``. Shape: :math:`(B,)`."""
        terms = [
            (w - w0).pow(2).sum(dim=1) / w0.pow(2).sum(dim=1).clamp_min(1e-12)
            for g, sizes in self.sizes.items()
            for w, w0 in zip(self.weight[g].split(sizes, dim=1), start.weight[g].detach().split(sizes, dim=1))
        ]
        fusion = (torch.log_softmax(self.logits, 1) - torch.log_softmax(start.logits.detach(), 1)).pow(2).mean(dim=1)
        return torch.stack(terms, dim=1).mean(dim=1) + fusion

    @torch.no_grad()
    def write(self, heads: QualityHeads, model: int = 0, factor: float = 1.0) -> QualityHeads:
        """Copy model ``model`` into ``heads`` (same groups and channels), head weights times ``factor``."""
        for g, sizes in self.sizes.items():
            for conv, w in zip(heads.heads[g].convs, self.weight[g][model].split(sizes)):
                conv.weight.copy_(w.reshape(conv.weight.shape) * factor)
        heads.fusion.logits.copy_(self.logits[model])
        return heads


@dataclass(frozen=True)
class Batch:
    """What each of ``B`` models learns from and how.

    Attributes:
        train: :math:`(B, N)` bool, the training items of each model.
        learn: per model, the parts that learn (``'fusion'`` and/or group names).
        within_scene, prior, linear: per model, as in :class:`~spips_pyiqa.recipes.human_heads.Recipe`.
        temperature, lr, epochs: shared.
    """

    train: np.ndarray
    learn: Sequence[tuple[str, ...]]
    within_scene: Sequence[bool]
    prior: Sequence[float]
    linear: Sequence[float]
    temperature: float = 0.5
    lr: float = 0.05
    epochs: int = 100


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum(dim=-1) / mask.sum(dim=-1).clamp_min(1)


def _pearson(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row, Pearson's r of ``x`` and ``y`` over the items of ``mask``. Shape: (B, N) -> (B,)."""
    vx = (x - _masked_mean(x, mask)[:, None]) * mask
    vy = (y - _masked_mean(y, mask)[:, None]) * mask
    return (vx * vy).sum(dim=1) / (vx.norm(dim=1) * vy.norm(dim=1)).clamp_min(1e-12)


def train_batch(start: QualityHeads, x: Mapping[str, torch.Tensor], badness: np.ndarray, scenes: Sequence[str],
                batch: Batch, monitor: np.ndarray | None = None) -> tuple[LinearHeads, torch.Tensor, list]:
    """Train ``B`` copies of ``start`` at once, each on its own items; see the module docstring.

    After training, each model's head weights are rescaled by one factor so that its mean score on
    its training items is the starting heads' there (returned as ``factors``; apply it with
    :meth:`LinearHeads.write`).

    Args:
        x: :func:`stacked_means` of every item; badness, scenes: per item.
        monitor: optional :math:`(B, N)` bool, held-out items whose SRCC the curves record.

    Returns:
        The trained models, their ``factors`` :math:`(B,)`, and per epoch a dict with the per-model
        ``loss`` (and ``held-out SRCC`` with ``monitor``).
    """
    from scipy import stats

    train = torch.as_tensor(batch.train, dtype=torch.float32)
    count = len(train)
    model, begin = LinearHeads(start, count), LinearHeads(start, count).requires_grad_(False)
    masks = {'fusion': torch.tensor([[float('fusion' in parts)] for parts in batch.learn])}
    masks.update({g: torch.tensor([[float(g in parts)] for parts in batch.learn]) for g in model.weight})
    optimizer = torch.optim.Adam(model.parameters(), lr=batch.lr)
    y = torch.as_tensor(badness, dtype=torch.float32)
    # each unordered pair once (BCE(z, 1) = BCE(-z, 0): the mean over ordered pairs is the same)
    first, second = torch.triu_indices(len(y), len(y), offset=1)
    used = train.bool().any(dim=0)  # a pair with an item no model trains on counts for no model
    keep = (y[first] != y[second]) & used[first] & used[second]
    first, second = first[keep], second[keep]
    names = {s: k for k, s in enumerate(sorted(set(scenes)))}
    scene_id = torch.tensor([names[s] for s in scenes])
    same = (scene_id[first] == scene_id[second]).float()
    within = torch.tensor([float(w) for w in batch.within_scene])[:, None]
    valid = train[:, first] * train[:, second] * (within * same + (1 - within))
    pairs = valid.sum(dim=1).clamp_min(1)
    target = (y[first] > y[second]).float().expand_as(valid)
    # score differences of every pair as one product: predicted (B, N) @ difference (N, P) (gathering
    # the columns instead makes the backward an accumulating scatter, most of the training time)
    difference = torch.zeros(len(y), len(first))
    columns = torch.arange(len(first))
    difference[first, columns], difference[second, columns] = 1.0, -1.0
    prior, linear = torch.tensor(batch.prior, dtype=torch.float32), torch.tensor(batch.linear, dtype=torch.float32)
    with torch.no_grad():
        start_scores = begin(x)
        mean0 = _masked_mean(start_scores, train)
        std0 = (_masked_mean((start_scores - mean0[:, None]) ** 2, train) * train.sum(1) / (train.sum(1) - 1)).sqrt()
        temperature = (batch.temperature * std0)[:, None]
    curve = []
    for epoch in range(batch.epochs + 1):
        predicted = model(x)
        logits = (predicted @ difference) / temperature
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
        loss = (bce * valid).sum(dim=1) / pairs
        if bool((linear > 0).any()):
            loss = loss + linear * (1 - _pearson(predicted, y.expand_as(predicted), train)) / 2
        point = {'epoch': epoch, 'loss': loss.detach().numpy().copy()}
        if monitor is not None:
            held = predicted.detach().numpy()
            point['held-out SRCC'] = np.array([stats.spearmanr(held[b][monitor[b]], badness[monitor[b]]).statistic
                                               for b in range(count)])
        curve.append(point)
        if epoch == batch.epochs:
            break
        total = loss + prior * model.prior(begin) if bool((prior > 0).any()) else loss
        optimizer.zero_grad()
        total.sum().backward()
        model.logits.grad.mul_(masks['fusion'])
        for g, w in model.weight.items():
            w.grad.mul_(masks[g])
        optimizer.step()
        model.clamp_weights()
    model.requires_grad_(False)
    factors = mean0 / _masked_mean(model(x), train).clamp_min(1e-12)
    return model, factors, curve
