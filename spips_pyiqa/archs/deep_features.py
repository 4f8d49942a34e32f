r"""Deep module of SPIPS: squared differences of channel-normalised CNN features (eqs. 4-8).

Both images go through one pretrained ImageNet backbone (one batched pass), features are taken at
``L`` layers (AlexNet/VGG16: 5, SqueezeNet: 7), unit-normalised along channels and subtracted:

.. math::
    \hat{F}^{l} &= F^{l} / \lVert F^{l} \rVert_2 \ \text{(per pixel, over channels)} &(4)-(5) \\
    \Delta^{l} &= (\hat{F}^{l}_{\mathrm{target}} - \hat{F}^{l}_{\mathrm{ref}})^{\odot 2} &(6) \\
    G_{\mathrm{percept}} &= \{\Delta^{1}, \dots, \Delta^{L-2}\}, \quad
    G_{\mathrm{semantic}} = \{\Delta^{L-1}, \Delta^{L}\} &(7)-(8)

The backbones, their layer taps and the input scaling are pyiqa's LPIPS ones (``lpips_arch``), so
with LPIPS's heads SPIPS's deep part reproduces LPIPS. The one deliberate difference is the norm:
``F / sqrt(sum F^2 + eps^2)`` instead of LPIPS's ``F / (sqrt(sum F^2) + eps)``, equal to 1e-10
relative but with a finite gradient where a feature vector is all zero (saturated inputs), where
LPIPS's square root gives NaN gradients.

References:
    Lao & Yu, "SPIPS: Scene Perceived Image Perceptual Score", 2025, eqs. (4)-(8).
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric",
    CVPR 2018 (LPIPS).
"""

from typing import List, Tuple

import torch
from torch import nn
from pyiqa.archs.lpips_arch import ScalingLayer, alexnet, squeezenet, vgg16

from spips_pyiqa.utils.weights import (
    FETCH_COMMAND,
    MissingWeightsError,
    require_backbone_weights,
    torchvision_checkpoint_path,
)

#: Backbone class and channels of each tapped layer, as in pyiqa's LPIPS.
BACKBONES = {
    'alex': (alexnet, (64, 192, 384, 256, 256)),
    'vgg': (vgg16, (64, 128, 256, 512, 512)),
    'squeeze': (squeezenet, (64, 128, 256, 384, 384, 512, 512)),
}
#: Number of deepest layers forming the semantic group (eq. 8); the rest are perceptual (eq. 7).
SEMANTIC_LAYERS = 2


def normalize_channels(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    r"""Unit-normalise each feature vector along channels, eqs. (4)-(5).

    Shape:
        - features: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`.
    """
    return features * torch.rsqrt((features * features).sum(dim=1, keepdim=True) + eps**2)


def backbone_channels(net: str) -> Tuple[int, ...]:
    """Channels of the ``L`` tapped layers of backbone ``net`` (validated)."""
    if net not in BACKBONES:
        raise ValueError(f'net must be one of {sorted(BACKBONES)}, got {net!r}')
    return BACKBONES[net][1]


def _build_backbone(net: str, tune: bool) -> nn.Module:
    """pyiqa's LPIPS backbone with ImageNet weights; one clear error where they are missing or bad."""
    backbone_class = BACKBONES[net][0]
    if net != 'squeeze':  # SqueezeNet has no offline source: let torchvision download it
        require_backbone_weights(net)
    try:
        return backbone_class(requires_grad=tune, pretrained=True)
    except (OSError, RuntimeError) as error:  # failed download (URLError is OSError), bad file
        cause = f'{type(error).__name__}: {(str(error).splitlines() or [""])[0][:200]}'
        path = torchvision_checkpoint_path(net)
        if path.is_file():
            raise MissingWeightsError(
                f'{path} is unreadable or not the {net} ImageNet weights ({cause}); '
                f'run `{FETCH_COMMAND}` to replace it'
            ) from None
        try:
            require_backbone_weights(net)
        except MissingWeightsError as missing:
            raise MissingWeightsError(f'{missing} ({cause})') from None
        raise


class DeepFeatureDistances(nn.Module):
    r"""Per-layer squared feature differences, split into perceptual and semantic groups.

    Args:
        net: backbone, one of ``'alex'`` (default of SPIPS), ``'vgg'``, ``'squeeze'``.
        tune: train the backbone too (frozen by default, like LPIPS).
    """

    def __init__(self, net: str = 'alex', tune: bool = False):
        super().__init__()
        backbone_channels(net)
        self.scaling = ScalingLayer()
        self.backbone = _build_backbone(net, tune)

    def forward(
        self, target: torch.Tensor, ref: torch.Tensor
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        r"""Return the perceptual and semantic groups of :math:`\Delta^l`, eqs. (6)-(8).

        Shape:
            - target, ref: :math:`(N, 3, H, W)` in [0, 1].
            - Output: two lists of :math:`(N, C_l, H_l, W_l)` tensors, layers in depth order.
        """
        diffs = []
        for features_target, features_ref in zip(self.features(target), self.features(ref)):
            difference = normalize_channels(features_target) - normalize_channels(features_ref)
            diffs.append(difference * difference)  # = pow(2), with a cheaper backward
        return diffs[:-SEMANTIC_LAYERS], diffs[-SEMANTIC_LAYERS:]

    def features(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        r"""Backbone features of one batch at the ``L`` tapped layers (LPIPS input scaling).

        Shape:
            - image: :math:`(N, 3, H, W)` in [0, 1].
            - Output: ``L`` tensors :math:`(N, C_l, H_l, W_l)`.
        """
        image = self.scaling(image * 2 - 1)
        if image.device.type == 'cpu':  # oneDNN convolutions and pooling: ~20% faster channels-last
            image = image.contiguous(memory_format=torch.channels_last)
        return tuple(self.backbone(image))
