r"""Quality-feature heads and fusion of SPIPS (eqs. 9-12).

Each group of distance maps (traditional, perceptual, semantic) has its own learned 1x1
convolution (one per map in the group, since layers differ in channels) followed by a ReLU; the
group distance is the sum over its maps of their spatial means:

.. math::
    d_g = \sum_{m \in G_g} \frac{1}{H_m W_m} \sum_{h,w}
          \mathrm{ReLU}\big(w_m^{\top} \Delta^{m}_{hw}\big) \qquad (9)-(11)

and SPIPS fuses them with weights on the simplex, by construction a softmax of free logits:

.. math::
    \mathrm{SPIPS} = \lambda_1 d_{\mathrm{trad}} + \lambda_2 d_{\mathrm{percept}}
                   + \lambda_3 d_{\mathrm{semantic}}, \quad
    \lambda = \mathrm{softmax}(\theta), \ \textstyle\sum_i \lambda_i = 1 \qquad (12)

The convolutions have no bias, so identical images score exactly 0; with non-negative weights
(kept so during training by :meth:`GroupHead.clamp_weights`, like LPIPS) the score is monotone in
every distance map.

Which weights are negative or 0 decides how ``SPIPS`` may compute the traditional group (from the
maps' means, skipping maps that weigh 0). Each head reads that from the device when its weights
change, not per call (:meth:`GroupHead.weight_signs`), so the forward pass has no host read and
``torch.compile`` traces it as one graph.

References:
    Lao & Yu, "SPIPS: Scene Perceived Image Perceptual Score", 2025, eqs. (9)-(12).
"""

from typing import Dict, List, Mapping, NamedTuple, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


class WeightSigns(NamedTuple):
    """What a head's weights allow, read from the device once per change of the weights."""

    nonnegative: bool  #: every weight >= 0: for maps >= 0, mean(ReLU(w . D)) = ReLU(w . mean(D))
    nonzero: Tuple[Tuple[bool, ...], ...]  #: per map of the group, per channel: its weight is not 0


def _refresh_after_load(head: 'GroupHead', incompatible_keys) -> None:
    """``load_state_dict`` post-hook: every load route (SPIPS, its heads, one head) re-reads the signs."""
    head.refresh_weight_signs()


def _conv1x1(maps: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    r"""``F.conv2d(maps, weight)`` for one output channel, eq. (11) before the ReLU.

    Eagerly a broadcast product + channel sum: same result, and on CPU up to 10x faster than conv2d
    for these single-output, few-channel maps. Under ``torch.compile`` the convolution itself: its
    weight gradient is then one library call, where the product's would be a reduction over
    batch x pixels, whose code inductor specialises on the batch size (a recompile for a batch of
    another size class).

    Shape:
        - maps: :math:`(N, C, H, W)`; weight: :math:`(1, C, 1, 1)`.
        - Output: :math:`(N, 1, H, W)`.
    """
    if torch.compiler.is_compiling():
        return F.conv2d(maps, weight)
    return (maps * weight).sum(dim=1, keepdim=True)


class GroupHead(nn.Module):
    r"""Learned 1x1 convolution + ReLU for each map of one group, eqs. (9)-(11).

    Args:
        channels: channels of each map of the group, e.g. ``(64, 192, 384)``.
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in channels)
        self.register_load_state_dict_post_hook(_refresh_after_load)
        self.refresh_weight_signs()

    def forward(self, maps: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        r"""Group distance and the per-map quality maps.

        Shape:
            - maps: :math:`(N, C_m, H_m, W_m)` per map of the group.
            - Output: distance :math:`(N, 1)` and a list of :math:`(N, 1, H_m, W_m)` maps.
        """
        quality_maps = [F.relu(_conv1x1(m, conv.weight)) for conv, m in zip(self.convs, maps)]
        distance = sum(q.mean(dim=(2, 3)) for q in quality_maps)
        return distance, quality_maps

    @torch.no_grad()
    def clamp_weights(self) -> None:
        """Project the weights onto the non-negative orthant (after each optimiser step), then
        re-read their signs (:meth:`refresh_weight_signs`), so the next forward pass reads none."""
        for conv in self.convs:
            conv.weight.clamp_(min=0)
        self.refresh_weight_signs()

    @torch.no_grad()
    def refresh_weight_signs(self) -> None:
        """Read which weights are negative or 0 (one host read), for :meth:`weight_signs`.

        Called on construction, after :meth:`clamp_weights`, :meth:`QualityHeads.reset` and every
        ``load_state_dict``; call it after writing weights through ``.data`` (which bypasses the
        version counter that :meth:`weight_signs` watches).
        """
        weights = [conv.weight for conv in self.convs]
        if any(w.is_meta for w in weights):  # no values: assume every weight weighs, some negative
            self._signs = WeightSigns(False, tuple((True,) * w.numel() for w in weights))
        else:
            values = torch.cat([w.detach().flatten() for w in weights]).tolist()  # the one read
            each = iter(values)
            nonzero = tuple(tuple(next(each) != 0 for _ in range(w.numel())) for w in weights)
            self._signs = WeightSigns(min(values) >= 0, nonzero)
        self._signs_of = tuple((w, w._version, w.data_ptr()) for w in weights)

    def weight_signs(self) -> WeightSigns:
        """Signs of the weights without a host read, as of the last :meth:`refresh_weight_signs`.

        Eagerly, weights changed since then (an optimiser step, an in-place edit, a new
        ``Parameter``: the tensor, its version counter or its storage differ) are re-read first,
        once. Under ``torch.compile`` the stored signs are used as they are: dynamo guards on their
        values, so a refresh that changes them recompiles (one that does not, e.g. a clamp after
        each training step, keeps the graph); ``SPIPS`` checks inside the graph that they hold.
        """
        if not torch.compiler.is_compiling() and self._signs_stale():
            self.refresh_weight_signs()
        return self._signs

    def _signs_stale(self) -> bool:
        return any(
            weight is not conv.weight or version != weight._version or pointer != weight.data_ptr()
            for conv, (weight, version, pointer) in zip(self.convs, self._signs_of)
        )


class SimplexFusion(nn.Module):
    r"""Convex combination of group distances with learnable weights, eq. (12).

    Args:
        weights: initial :math:`\lambda` per group; positive, normalised here to sum to 1.
    """

    def __init__(self, weights: Sequence[float]):
        super().__init__()
        initial = torch.tensor(weights, dtype=torch.float32)
        if initial.ndim != 1 or not (initial > 0).all():
            raise ValueError(f'fusion weights must be positive, got {list(weights)}')
        self.logits = nn.Parameter(torch.log(initial / initial.sum()))

    @property
    def weights(self) -> torch.Tensor:
        r""":math:`\lambda`, shape :math:`(G,)`, summing to 1."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, distances: Sequence[torch.Tensor]) -> torch.Tensor:
        r"""Shape: ``G`` tensors of :math:`(N, 1)` (or maps :math:`(N, 1, H, W)`) -> same shape."""
        return sum(w * d for w, d in zip(self.weights, distances))


class QualityHeads(nn.Module):
    r"""All learned parts of SPIPS: one :class:`GroupHead` per group and the fusion, eqs. (9)-(12).

    Args:
        channels: per group name, in fusion order, the channels of each of its maps.
    """

    def __init__(self, channels: Mapping[str, Sequence[int]]):
        super().__init__()
        self.heads = nn.ModuleDict({g: GroupHead(c) for g, c in channels.items()})
        self.fusion = SimplexFusion([1.0] * len(channels))
        self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        r"""Documented, deterministic initialisation: every map of a group weighs equally.

        Each head's weights are :math:`1 / (\text{maps in group} \times C_m)`, so a group distance
        starts as the mean over its maps of the channel-mean distance; :math:`\lambda` is uniform.
        """
        for head in self.heads.values():
            for conv in head.convs:
                conv.weight.fill_(1.0 / (len(head.convs) * conv.in_channels))
            head.refresh_weight_signs()
        self.fusion.logits.zero_()

    def clamp_weights(self) -> None:
        """Keep head weights non-negative (monotonicity), to call after each optimiser step."""
        for head in self.heads.values():
            head.clamp_weights()

    def forward(
        self, maps: Mapping[str, Sequence[torch.Tensor]]
    ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor], Dict[str, List[torch.Tensor]]]:
        r"""SPIPS distance (eq. 12), each group's distance (eqs. 9-11) and each group's quality maps.

        Shape:
            - maps: per group, its distance maps :math:`(N, C_m, H_m, W_m)`.
            - Output: :math:`(N, 1)`; per group :math:`(N, 1)`; per group a list of
              :math:`(N, 1, H_m, W_m)`.
        """
        outputs = {g: head(maps[g]) for g, head in self.heads.items()}
        distances = {g: distance for g, (distance, _) in outputs.items()}
        score = self.fusion(list(distances.values()))
        return score, distances, {g: quality_maps for g, (_, quality_maps) in outputs.items()}
