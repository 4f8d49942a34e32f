r"""SPIPS: Scene Perceived Image Perceptual Score, as a pyiqa architecture.

Reference:
    Z. Lao and H. Yu, "Scene Perceived Image Perceptual Score (SPIPS): combining global and local
    perception for image quality assessment", arXiv:2504.17234, 2025.

SPIPS is a full-reference distance (lower is better, 0 for identical images). It fuses three groups
of per-pixel distance maps, each through its own learned 1x1 convolution + ReLU head:

- traditional: flipped PSNR, SSIM and per-scale MS-SSIM maps, eqs. (1)-(3), ``traditional_maps.py``;
- perceptual / semantic: squared differences of normalised CNN features at layers ``1..L-2`` /
  ``L-1, L``, eqs. (4)-(8), ``deep_features.py`` (split into groups by ``groups.py``);
- heads and convex fusion ``lambda_1 d_trad + lambda_2 d_percept + lambda_3 d_semantic``,
  eqs. (9)-(12), ``quality_heads.py``.

Weights: the backbone is torchvision's ImageNet model (offline through
``python -m spips_pyiqa fetch-weights``); heads and fusion weights come from a checkpoint shipped in
``spips_pyiqa/archs/pretrained/`` (see ``spips_pyiqa/recipes/`` for their provenance) or ``pretrained_model_path``.
"""

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn
from pyiqa.utils.registry import ARCH_REGISTRY

from spips_pyiqa.archs.checkpoint import load_checkpoint, refuse_non_finite_state
from spips_pyiqa.archs.deep_features import DeepFeatureDistances
from spips_pyiqa.archs.groups import DEEP_GROUPS, GROUPS, group_channels
from spips_pyiqa.archs.input_checks import check_image_pair
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.archs.traditional_maps import (
    TRADITIONAL_CHANNELS,
    gaussian_kernel_1d,
    traditional_maps,
    traditional_means,
)
from spips_pyiqa.metric_configs import default_heads_version, heads_file_name

HEADS_DIR = Path(__file__).resolve().parent / 'pretrained'


def default_heads_path(net: str, groups: Sequence[str], version: Optional[str] = None) -> Path:
    """File of the shipped heads for a backbone, group set and version (default: the variants
    table's, :func:`~spips_pyiqa.metric_configs.default_heads_version`), e.g. ``spips_alex_v0.1.pth``."""
    version = default_heads_version(net, groups) if version is None else version
    return HEADS_DIR / heads_file_name(net, groups, version)


def _assert_signs_hold(group: str, weights: Sequence[torch.Tensor], needed: Optional[Sequence[bool]] = None) -> None:
    """Inside a compiled graph, which cannot re-read the signs: fail (``RuntimeError``; on CUDA a
    device-side assert) unless a head's weights are still >= 0, and 0 where ``needed`` skips a map.
    No host read: the check runs on the device, as part of the graph."""
    weight = torch.cat([w.detach().flatten() for w in weights])
    holds = weight >= 0
    if needed is not None:
        skipped = torch.tensor([not n for n in needed], device=weight.device)
        holds = holds & ~(skipped & (weight != 0))
    torch._assert_async(
        holds.all(),
        f"SPIPS: the {group} head's weights changed inside torch.compile without a refresh; call "
        f"net.quality.heads['{group}'].refresh_weight_signs() after editing them through .data",
    )


@ARCH_REGISTRY.register()
class SPIPS(nn.Module):
    r"""SPIPS metric network.

    Args:
        net: backbone, ``'alex'`` (default), ``'vgg'`` or ``'squeeze'``.
        groups: distance groups to fuse; ``('traditional', 'perceptual')`` is the paper's
            Ablation 1 (no semantic group), ``('perceptual', 'semantic')`` its Ablation 2 (no
            traditional group).
        pretrained: load the shipped default heads (ignored when ``pretrained_model_path`` is
            given); ``False`` keeps the uniform initialisation of :meth:`QualityHeads.reset`.
        pretrained_model_path: a SPIPS checkpoint (heads-only or full), loaded strictly.
        heads_version: which shipped heads ``pretrained`` loads (versions:
            :data:`spips_pyiqa.metric_configs.HEADS_VERSIONS`); ``None``: the default of the variant
            with this ``net`` and ``groups`` in :data:`spips_pyiqa.metric_configs.VARIANTS`, so
            ``SPIPS()`` is ``pyiqa.create_metric('spips')``; label-free for an unregistered combination.
        tune: make the backbone trainable (frozen by default, like LPIPS).
    """

    def __init__(
        self,
        net: str = 'alex',
        groups: Sequence[str] = GROUPS,
        pretrained: bool = True,
        pretrained_model_path: Union[str, Path, None] = None,
        heads_version: Optional[str] = None,
        tune: bool = False,
    ):
        super().__init__()
        channels = group_channels(net, groups)
        self.deep = DeepFeatureDistances(net, tune=tune)
        self.net, self.groups = net, tuple(channels)
        self.quality = QualityHeads(channels)
        self.register_buffer('window', gaussian_kernel_1d(), persistent=False)
        for module in (self, self.quality):  # every load_state_dict route refuses NaN/Inf weights
            module.register_load_state_dict_pre_hook(refuse_non_finite_state)
        self.meta = {}
        if pretrained_model_path is not None or pretrained:
            path = pretrained_model_path
            if path is None:
                path = default_heads_path(net, self.groups, heads_version)
            self.meta = load_checkpoint(self, path, {'net': net, 'groups': list(self.groups)})
        self.eval()

    def distance_maps(
        self, target: torch.Tensor, ref: torch.Tensor, pooled: bool = False
    ) -> Dict[str, List[torch.Tensor]]:
        r"""Per group, its distance maps before the heads (eqs. 1-8), checked inputs assumed.

        With ``pooled``, a group whose head's weights are all non-negative holds the spatial means
        of its maps, shape :math:`(N, C_m, 1, 1)`: the maps are >= 0, so the ReLU of eq. (11) never
        cuts and :math:`\mathrm{mean}(\mathrm{ReLU}(w^\top D)) = \mathrm{ReLU}(w^\top \mathrm{mean}(D))`,
        the same score (and gradient) without storing the maps. The traditional means come from
        :func:`traditional_means` (no upsampled MS-SSIM maps; in eval mode, channels whose weight
        is exactly 0 are not computed, :meth:`traditional_channels_needed`), the deep ones from
        :func:`~spips_pyiqa.archs.deep_features.squared_unit_difference` with ``mean`` (the
        squared differences are never stored). Training keeps the weights non-negative; a
        checkpoint with a negative weight gets that group's full maps.

        The signs come from :meth:`GroupHead.weight_signs`, read when the weights change, not per
        call: no host read of tensor values here, so ``torch.compile`` traces one graph.

        Shape:
            - target, ref: :math:`(N, C, H, W)`, already through ``check_image_pair``.
            - Output: ``{group: [(N, C_m, H_m, W_m), ...]}``, every value >= 0.
        """
        perceptual, semantic = self.deep(target, ref, mean=pooled and self._deep_pooled())
        maps = {'perceptual': perceptual, 'semantic': semantic}
        if 'traditional' in self.groups:
            needed = self._pooled_channels() if pooled else None
            if needed is not None:
                maps['traditional'] = [traditional_means(target, ref, self.window, needed)[..., None, None]]
            else:
                maps['traditional'] = [traditional_maps(target, ref, self.window)]
        return maps

    def traditional_channels_needed(self) -> Optional[List[bool]]:
        """Which traditional maps the pooled score computes: in eval mode those whose head weight is
        non-zero (the others cannot change the score or its gradient to the images); ``None`` (all)
        in training, where every weight gets its gradient."""
        return None if self.training else list(self.quality.heads['traditional'].weight_signs().nonzero[0])

    def _pooled_channels(self) -> Optional[Tuple[bool, ...]]:
        """The traditional channels the score takes as means, or ``None``: full maps (a negative
        weight, where the ReLU of eq. 11 may cut). Python values only: the mode, and the signs read
        when the weights changed (under ``torch.compile`` checked inside the graph)."""
        head = self.quality.heads['traditional']
        signs = head.weight_signs()
        if not signs.nonnegative:
            return None
        needed = (True,) * TRADITIONAL_CHANNELS if self.training else signs.nonzero[0]
        if torch.compiler.is_compiling():
            _assert_signs_hold('traditional', [head.convs[0].weight], needed)
        return needed

    def _deep_pooled(self) -> bool:
        """Whether the score takes the deep groups' maps as means: every deep head's weights are
        non-negative (signs as in :meth:`_pooled_channels`)."""
        heads = {g: self.quality.heads[g] for g in DEEP_GROUPS if g in self.quality.heads}
        if not all(head.weight_signs().nonnegative for head in heads.values()):
            return False
        if torch.compiler.is_compiling():
            for group, head in heads.items():
                _assert_signs_hold(group, [conv.weight for conv in head.convs])
        return True

    def group_distances(self, target: torch.Tensor, ref: torch.Tensor) -> Dict[str, torch.Tensor]:
        r"""Each group's distance :math:`d_g` before fusion, eqs. (9)-(11).

        Shape:
            - target, ref: :math:`(N, C, H, W)`.
            - Output: ``{group: (N, 1)}``.
        """
        target, ref = check_image_pair(target, ref)
        _, distances, _ = self.quality(self.distance_maps(target, ref, pooled=True))
        return distances

    def _upsampled_maps(self, quality_maps, size) -> Dict[str, torch.Tensor]:
        """Group maps (sum of the group's head outputs at ``size``) and their fusion."""
        maps = {
            g: sum(F.interpolate(m, size=size, mode='bilinear', align_corners=False) for m in ms)
            for g, ms in quality_maps.items()
        }
        maps['spips'] = self.quality.fusion([maps[g] for g in self.groups])
        return maps

    def quality_maps(self, target: torch.Tensor, ref: torch.Tensor) -> Dict[str, torch.Tensor]:
        r"""Per-group quality maps and the fused SPIPS map, at input resolution (for display).

        A group's map is the sum of its heads' outputs, each bilinearly upsampled to the input size;
        ``'spips'`` fuses them with :math:`\lambda`. The spatial mean of a map approximates the
        group distance (the score averages each layer at its own resolution, as LPIPS does).

        Shape:
            - target, ref: :math:`(N, C, H, W)`.
            - Output: ``{group: (N, 1, H, W), ..., 'spips': (N, 1, H, W)}``.
        """
        target, ref = check_image_pair(target, ref)
        _, _, maps = self.quality(self.distance_maps(target, ref))
        return self._upsampled_maps(maps, target.shape[-2:])

    def forward(
        self, target: torch.Tensor, ref: torch.Tensor, return_map: bool = False
    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
        r"""SPIPS distance of ``target`` to ``ref``, eq. (12).

        Args:
            target: distorted image(s), values in [0, 1].
            ref: reference image(s), values in [0, 1].
            return_map: also return the fused quality map (see :meth:`quality_maps`).

        Shape:
            - target, ref: :math:`(N, C, H, W)`, ``C`` in {1, 3}, ``H, W >= 64``.
            - Output: :math:`(N, 1)`; with ``return_map`` also :math:`(N, 1, H, W)`.
        """
        target, ref = check_image_pair(target, ref)
        if not return_map:
            return self.quality(self.distance_maps(target, ref, pooled=True))[0]
        score, _, maps = self.quality(self.distance_maps(target, ref))
        return score, self._upsampled_maps(maps, target.shape[-2:])['spips']
