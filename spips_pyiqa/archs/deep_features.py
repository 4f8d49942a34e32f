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

import threading
from typing import Dict, List, Tuple
from unittest import mock

import torch
import torchvision
from torch import nn
from torch.autograd.function import once_differentiable
from pyiqa.archs import lpips_arch
from pyiqa.archs.lpips_arch import ScalingLayer, alexnet, squeezenet, vgg16

from spips_pyiqa.archs.backbone_layout import use_faster_convolutions
from spips_pyiqa.utils.weights import (
    MissingWeightsError,
    backbone_features,
    require_squeezenet_weights,
    torchvision_checkpoint_path,
)

#: Backbone class and channels of each tapped layer, as in pyiqa's LPIPS.
BACKBONES = {
    'alex': (alexnet, (64, 192, 384, 256, 256)),
    'vgg': (vgg16, (64, 128, 256, 512, 512)),
    'squeeze': (squeezenet, (64, 128, 256, 384, 384, 512, 512)),
}
#: torchvision builder that pyiqa's backbone class calls with ``weights='IMAGENET1K_V1'``.
TORCHVISION_BUILDERS = {'alex': 'alexnet', 'vgg': 'vgg16'}
#: Number of deepest layers forming the semantic group (eq. 8); the rest are perceptual (eq. 7).
SEMANTIC_LAYERS = 2
_SUBSTITUTION_LOCK = threading.Lock()


def normalize_channels(features: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    r"""Unit-normalise each feature vector along channels, eqs. (4)-(5).

    Shape:
        - features: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`.
    """
    return features * torch.rsqrt((features * features).sum(dim=1, keepdim=True) + eps**2)


def _channel_scale(features: torch.Tensor, eps: float) -> torch.Tensor:
    r""":math:`s_f = (\sum_c f^2 + \epsilon^2)^{-1/2}` per pixel (eqs. 4-5), without forming ``f * f``.

    Shape:
        - features: :math:`(N, C, H, W)`.
        - Output: :math:`(N, 1, H, W)`.
    """
    return torch.rsqrt(torch.linalg.vector_norm(features, dim=1, keepdim=True).square() + eps**2)


def _through_normalisation(unit: torch.Tensor, scale: torch.Tensor, grad_unit: torch.Tensor) -> torch.Tensor:
    r"""Gradient to :math:`f` from the gradient :math:`h` to :math:`\hat f = f s_f`:
    :math:`s_f (h - \hat f \sum_c \hat f h)` (consumes ``grad_unit``).

    Shape: all :math:`(N, C, H, W)` but ``scale`` :math:`(N, 1, H, W)`.
    """
    projection = (unit * grad_unit).sum(dim=1, keepdim=True)
    return torch.addcmul(grad_unit, unit, projection, value=-1).mul_(scale)


class _SquaredUnitDifference(torch.autograd.Function):
    r""":math:`\Delta = (\hat a - \hat b)^{\odot 2}` with :math:`\hat f = f s_f`,
    :math:`s_f = (\sum_c f^2 + \epsilon^2)^{-1/2}` (eqs. 4-6, :func:`normalize_channels`), as one
    autograd node with a hand-written backward.

    With ``mean``, the output is :math:`\Delta`'s spatial mean per channel, shape
    :math:`(N, C, 1, 1)`: what the score needs where the heads' weights are non-negative
    (``SPIPS.distance_maps``); :math:`\Delta` itself is never stored.

    With :math:`h = 2 (\hat a - \hat b) \odot g` for the incoming gradient :math:`g` (for means,
    :math:`g / (HW)` broadcast over the pixels), :math:`\partial/\partial a = s_a (h - \hat a
    \sum_c \hat a h)` (and for ``b`` the same with :math:`-h`): a few passes over the features
    instead of autograd's dozen nodes (products, sums and accumulations), which cost a loss step
    more than the backbone's own elementwise work.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, eps: float, mean: bool) -> torch.Tensor:
        scale_a, scale_b = _channel_scale(a, eps), _channel_scale(b, eps)
        unit_a = a * scale_a
        # (a - b s_b / s_a) s_a: exactly 0 where a == b, one pass fewer than forming b's unit vectors
        difference = torch.addcmul(a, b, scale_b / scale_a, value=-1).mul_(scale_a)
        ctx.eps, ctx.mean = eps, mean
        ctx.save_for_backward(unit_a, scale_a, difference, b if ctx.needs_input_grad[1] else None)
        squared = difference * difference
        return squared.mean(dim=(2, 3), keepdim=True) if mean else squared

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        unit_a, scale_a, difference, b = ctx.saved_tensors
        if ctx.mean:
            grad = grad * (2.0 / (difference.shape[-2] * difference.shape[-1]))
        elif not difference.is_contiguous():  # channels-last features (CPU): the same layout throughout
            grad = 2 * grad.contiguous(memory_format=torch.channels_last)
        else:
            grad = 2 * grad
        twice_grad = difference * grad
        grad_b = None
        if b is not None:
            scale_b = _channel_scale(b, ctx.eps)
            grad_b = _through_normalisation(b * scale_b, scale_b, twice_grad.clone()).neg_()
        grad_a = _through_normalisation(unit_a, scale_a, twice_grad) if ctx.needs_input_grad[0] else None
        return grad_a, grad_b, None, None


def squared_unit_difference(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-10, mean: bool = False) -> torch.Tensor:
    r"""Squared difference of channel-normalised features, eqs. (4)-(6):
    ``(normalize_channels(a) - normalize_channels(b)) ** 2``, with a cheaper backward; with
    ``mean``, its spatial mean per channel (without storing the squared difference).

    Shape:
        - a, b: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C, H, W)`, with ``mean`` :math:`(N, C, 1, 1)`.
    """
    return _SquaredUnitDifference.apply(a, b, eps, mean)


def backbone_channels(net: str) -> Tuple[int, ...]:
    """Channels of the ``L`` tapped layers of backbone ``net`` (validated)."""
    if net not in BACKBONES:
        raise ValueError(f'net must be one of {sorted(BACKBONES)}, got {net!r}')
    return BACKBONES[net][1]


class _TorchvisionWithOurFeatures:
    """Stands in for ``torchvision.models`` inside pyiqa's ``lpips_arch`` while one backbone is built.

    pyiqa's AlexNet/VGG16 classes call ``models.alexnet(weights='IMAGENET1K_V1')`` (torchvision's
    cache file, or a download) and keep its ``.features``. The stand-in returns torchvision's
    model with the classifier on the meta device (never allocated) and ``features`` holding
    ``state_dict``, the same ImageNet tensors (checked by sha256 in ``spips_pyiqa.utils.weights``).
    Every other name is torchvision's, so a pyiqa LPIPS that another thread builds meanwhile gets
    torchvision's numbers too.
    """

    def __init__(self, builder: str, state_dict: Dict[str, torch.Tensor]):
        self._builder, self._state_dict = builder, state_dict

    def __getattr__(self, name: str):
        if name != self._builder:
            return getattr(torchvision.models, name)
        return self._build

    def _build(self, weights: str) -> nn.Module:
        if weights != 'IMAGENET1K_V1':
            raise ValueError(f'SPIPS holds the IMAGENET1K_V1 features only, pyiqa asked for {weights!r}')
        with torch.device('meta'):
            model = getattr(torchvision.models, self._builder)()
        features = {key.removeprefix('features.'): value for key, value in self._state_dict.items()}
        model.features.load_state_dict(features, strict=True, assign=True)
        return model


def _build_backbone(net: str, tune: bool) -> nn.Module:
    """pyiqa's LPIPS backbone with ImageNet weights; one clear error where they are missing or bad.

    AlexNet/VGG16 take their weights from SPIPS's own file (fetched on first use): for the time
    pyiqa's class is built, its module sees :class:`_TorchvisionWithOurFeatures` as
    ``torchvision.models`` (nothing else in pyiqa or torchvision changes). SqueezeNet has no
    offline source: torchvision downloads it.
    """
    backbone_class = BACKBONES[net][0]
    if net in TORCHVISION_BUILDERS:
        stand_in = _TorchvisionWithOurFeatures(TORCHVISION_BUILDERS[net], backbone_features(net))
        with _SUBSTITUTION_LOCK, mock.patch.object(lpips_arch, 'models', stand_in):
            return use_faster_convolutions(backbone_class(requires_grad=tune, pretrained=True), net)
    try:
        return backbone_class(requires_grad=tune, pretrained=True)
    except (OSError, RuntimeError) as error:  # failed download (URLError is OSError), bad file
        cause = f'{type(error).__name__}: {(str(error).splitlines() or [""])[0][:200]}'
        path = torchvision_checkpoint_path(net)
        if path.is_file():
            raise MissingWeightsError(
                f'{path} is unreadable or not the {net} ImageNet weights ({cause}); delete it so that '
                'torchvision downloads it again'
            ) from None
        try:
            require_squeezenet_weights()
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
        self, target: torch.Tensor, ref: torch.Tensor, mean: bool = False
    ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        r"""Return the perceptual and semantic groups of :math:`\Delta^l`, eqs. (6)-(8); with
        ``mean``, each :math:`\Delta^l`'s spatial mean per channel.

        Shape:
            - target, ref: :math:`(N, 3, H, W)` in [0, 1].
            - Output: two lists of :math:`(N, C_l, H_l, W_l)` tensors (with ``mean``
              :math:`(N, C_l, 1, 1)`), layers in depth order.
        """
        features = zip(self.features(target), self.features(ref))
        diffs = [squared_unit_difference(a, b, mean=mean) for a, b in features]
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
