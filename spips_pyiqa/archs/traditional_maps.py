r"""Traditional module of SPIPS: per-pixel PSNR, SSIM and MS-SSIM distance maps (eqs. 1-3).

SPIPS feeds the *maps* of three classic full-reference measures, not their pooled values, to a
learned head. Each map is normalised to :math:`[0, 1]` and flipped (:math:`1 - x`) so that 0 means
"identical"; all maps have the input resolution so they can be stacked channel-wise:

.. math::
    D_{\mathrm{PSNR}} &= 1 - \mathrm{clip}\big(\mathrm{PSNR}_{\mathrm{loc}} / P_{\max}, 0, 1\big)
        \qquad &(1) \\
    D_{\mathrm{SSIM}} &= 1 - \mathrm{clip}\big(l \cdot cs, 0, 1\big) &(2) \\
    D_{\mathrm{MS}}^{(s)} &= 1 - \mathrm{up}\big(\mathrm{clip}(cs^{(s)}, 0, 1)\big),\ s < S;
    \quad D_{\mathrm{MS}}^{(S)} = 1 - \mathrm{up}\big(\mathrm{clip}(l^{(S)} cs^{(S)}, 0, 1)\big) &(3)

What differs from pyiqa's ``ssim``/``ms_ssim`` (which return pooled values over a *valid*
convolution and need about 176 px for 5 scales): statistics are computed with a separable Gaussian
window and replicate ("same") padding, so every scale of a 64x64 BAPPS patch still yields a map and
the number of channels never depends on the input size. SSIM and MS-SSIM are computed on luma (pyiqa's
``to_y_channel``, YCbCr) in the [0, 1] range without pyiqa's 8-bit rounding, which would stop
gradients; PSNR uses the local mean squared error over the RGB channels, so colour shifts count.

References:
    Lao & Yu, "SPIPS: Scene Perceived Image Perceptual Score", 2025, eqs. (1)-(3).
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004 (SSIM, 11x11 Gaussian window, sigma 1.5).
    Wang, Simoncelli, Bovik, "Multiscale structural similarity for image quality assessment",
    Asilomar 2003 (5 scales, weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333).
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from pyiqa.utils.color_util import to_y_channel

MS_SSIM_SCALES = 5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Channels of the traditional map stack: PSNR, SSIM, then one per MS-SSIM scale.
TRADITIONAL_CHANNELS = 2 + MS_SSIM_SCALES
#: PSNR above this many dB (differences below ~1/3 of an 8-bit grey level) counts as identical.
PSNR_MAX_DB = 50.0
#: Floor of the local MSE, so the log stays finite (and its gradient too) at target == reference.
MSE_FLOOR = 1e-10
_K1, _K2 = 0.01, 0.03


def gaussian_kernel_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r"""Normalised 1-D Gaussian window.

    Shape:
        Output: :math:`(\text{size},)`.
    """
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).float()


#: Up to this image side, filtering is two matrix products (faster on CPU, see gaussian_filter).
BANDED_MAX_SIZE = 2048


def banded_filter_matrix(size: int, kernel: torch.Tensor) -> torch.Tensor:
    r"""Matrix ``B`` with ``B @ v`` = ``v`` filtered by ``kernel`` under replicate padding.

    Row ``i`` holds the kernel centred on ``i``; taps falling outside ``[0, size)`` are added to the
    border element, which is exactly what replicate padding does.

    Shape:
        Output: :math:`(\text{size}, \text{size})`.
    """
    radius = kernel.numel() // 2
    rows = torch.arange(size, device=kernel.device).repeat_interleave(kernel.numel())
    offsets = torch.arange(-radius, radius + 1, device=kernel.device).repeat(size)
    matrix = torch.zeros(size, size, dtype=kernel.dtype, device=kernel.device)
    return matrix.index_put_((rows, (rows + offsets).clamp(0, size - 1)), kernel.repeat(size), accumulate=True)


def gaussian_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Separable, same-size Gaussian filtering with replicate padding, per channel.

    Replicate padding works for any size, even maps smaller than the window (coarse MS-SSIM scales
    of 64 px patches). Up to :data:`BANDED_MAX_SIZE` px the two 1-D passes are products with banded
    matrices, ``B_H X B_W^T``, which BLAS runs 1.3-4x faster on CPU than depthwise convolutions
    (measured in ``benchmark_results/``); above it, where a product's cost per pixel (the side
    length) outgrows the window's, two grouped 1-D convolutions. Both give the same result to
    float32 rounding.

    Shape:
        - x: :math:`(N, C, H, W)`.
        - kernel: :math:`(k,)`, ``k`` odd.
        - Output: :math:`(N, C, H, W)`.
    """
    kernel = kernel.to(x)
    height, width = x.shape[-2:]
    if max(height, width) <= BANDED_MAX_SIZE:
        return banded_filter_matrix(height, kernel) @ x @ banded_filter_matrix(width, kernel).T
    channels, pad = x.shape[1], kernel.numel() // 2
    x = F.pad(x, (pad, pad, pad, pad), mode='replicate')
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


class SSIMComponents(NamedTuple):
    """Per-pixel luminance term ``l`` and contrast-structure term ``cs`` of SSIM."""

    luminance: torch.Tensor
    contrast_structure: torch.Tensor


def ssim_components(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> SSIMComponents:
    r"""Same-size maps of SSIM's ``l`` and ``cs`` terms for data range 1 (the factors of eq. 2).

    The five local statistics are filtered in one grouped convolution.

    Shape:
        - x, y: :math:`(N, 1, H, W)` in [0, 1].
        - Output: two tensors of shape :math:`(N, 1, H, W)`.
    """
    c1, c2 = _K1**2, _K2**2
    stats = gaussian_filter(torch.cat([x, y, x * x, y * y, x * y], dim=1), kernel)
    mu_x, mu_y, xx, yy, xy = stats.unbind(dim=1)
    mu_xy, mu_xx, mu_yy = mu_x * mu_y, mu_x * mu_x, mu_y * mu_y
    luminance = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1)
    contrast_structure = (2 * (xy - mu_xy) + c2) / ((xx - mu_xx) + (yy - mu_yy) + c2)
    return SSIMComponents(luminance.unsqueeze(1), contrast_structure.unsqueeze(1))


def psnr_distance_map(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Flipped, normalised local PSNR map, eq. (1).

    The local MSE is the Gaussian-weighted mean of the squared error over the window and the
    channels; ``PSNR_loc = 10 log10(1 / max(MSE_loc, MSE_FLOOR))`` is clipped to
    ``[0, PSNR_MAX_DB]`` and divided by it.

    Shape:
        - x, y: :math:`(N, C, H, W)` in [0, 1].
        - Output: :math:`(N, 1, H, W)` in [0, 1].
    """
    mse = gaussian_filter((x - y).pow(2).mean(dim=1, keepdim=True), kernel)
    psnr = -10.0 * torch.log10(mse.clamp_min(MSE_FLOOR))
    return 1.0 - (psnr / PSNR_MAX_DB).clamp(0.0, 1.0)


def _similarity_to_distance(similarity: torch.Tensor, size) -> torch.Tensor:
    """``1 - clip(similarity, 0, 1)``, bilinearly resized to ``size`` when needed (eqs. 2-3)."""
    distance = 1.0 - similarity.clamp(0.0, 1.0)
    if distance.shape[-2:] != tuple(size):
        distance = F.interpolate(distance, size=size, mode='bilinear', align_corners=False)
    return distance


def ssim_distance_maps(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Flipped SSIM map (eq. 2) and flipped MS-SSIM maps, one per scale (eq. 3).

    Scale 1 of MS-SSIM shares its statistics with SSIM, so they are computed once. Coarser scales
    are 2x average-pooled (``ceil_mode`` keeps odd sizes) and their maps bilinearly upsampled back
    to the input size. Scales 1..S-1 contribute ``cs``, scale S the full ``l * cs``, as in
    Wang et al. (2003).

    Shape:
        - x, y: :math:`(N, 1, H, W)` luma in [0, 1].
        - Output: :math:`(N, 1 + S, H, W)`: SSIM distance, then MS-SSIM distance per scale.
    """
    size = x.shape[-2:]
    maps = []
    for scale in range(MS_SSIM_SCALES):
        if scale > 0:
            x = F.avg_pool2d(x, kernel_size=2, ceil_mode=True)
            y = F.avg_pool2d(y, kernel_size=2, ceil_mode=True)
        luminance, contrast_structure = ssim_components(x, y, kernel)
        if scale == 0:
            maps.append(_similarity_to_distance(luminance * contrast_structure, size))
        last = scale == MS_SSIM_SCALES - 1
        term = luminance * contrast_structure if last else contrast_structure
        maps.append(_similarity_to_distance(term, size))
    return torch.cat(maps, dim=1)


def traditional_maps(target: torch.Tensor, ref: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Stack of the traditional distance maps of eqs. (1)-(3).

    Shape:
        - target, ref: :math:`(N, 3, H, W)` in [0, 1].
        - kernel: 1-D Gaussian window, see :func:`gaussian_kernel_1d`.
        - Output: :math:`(N, 7, H, W)` in [0, 1]: PSNR, SSIM, MS-SSIM scales 1..5; all zero where
          ``target == ref``.
    """
    luma_target = to_y_channel(target, 1.0, 'ycbcr')
    luma_ref = to_y_channel(ref, 1.0, 'ycbcr')
    return torch.cat(
        [psnr_distance_map(target, ref, kernel), ssim_distance_maps(luma_target, luma_ref, kernel)],
        dim=1,
    )
