"""The SPIPS architecture and its parts (bottom layer; like ``pyiqa/archs``).

- ``spips_arch``: the ``SPIPS`` network registered in pyiqa's ``ARCH_REGISTRY`` (eq. 12 end to end);
- ``traditional_maps``: PSNR / SSIM / MS-SSIM distance maps (eqs. 1-3), or their spatial means;
- ``gaussian_filter``: their local statistics: separable filtering with replicate padding
  (banded or tiled matrix products, chosen per device and size; exact adjoint for gradients);
- ``resize``: bilinear resizing of the coarse MS-SSIM maps by cached matrices (CPU, small maps),
  and the weights that give a resized map's mean without resizing;
- ``constant_cache``: the caches of those matrices and of the luma weights (keyed on sizes, dtypes,
  devices, never on tensor values; bypassed while ``torch.compile`` traces);
- ``deep_features``: squared differences of channel-normalised CNN features (eqs. 4-6);
- ``backbone_layout``: faster CPU algorithms for AlexNet's convolutions (same weights and results);
- ``winograd``: Winograd's minimal filtering F(3x3, 3x3), which runs AlexNet's last three;
- ``prepacked``: oneDNN's prepacked weights for the Winograd products' grouped 1x1 convolutions;
- ``groups``: the traditional / perceptual / semantic split and its channels (eqs. 7-8);
- ``quality_heads``: the learned 1x1 heads and the simplex fusion (eqs. 9-12);
- ``input_checks``: one clear error per bad input;
- ``checkpoint``: strict loading and saving of heads;
- ``pretrained/``: the shipped heads (how they were made: :mod:`spips_pyiqa.recipes`).

May import: ``spips_pyiqa.utils`` only (and torch, pyiqa).
"""

from spips_pyiqa.archs.spips_arch import SPIPS

__all__ = ['SPIPS']
