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
``to_y_channel``, YCbCr; :func:`luma`) in the [0, 1] range without pyiqa's 8-bit rounding, which would stop
gradients; PSNR uses the local mean squared error over the RGB channels, so colour shifts count.

The score needs only each map's spatial mean (eq. 11 with non-negative head weights, see
``SPIPS.distance_maps``): :func:`traditional_means` computes those without forming the
upsampled MS-SSIM maps and skips maps that are not needed; :func:`traditional_maps` builds the full
stack for display (``return_map``) and for heads with negative weights.

References:
    Lao & Yu, "SPIPS: Scene Perceived Image Perceptual Score", 2025, eqs. (1)-(3).
    Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004 (SSIM, 11x11 Gaussian window, sigma 1.5).
    Wang, Simoncelli, Bovik, "Multiscale structural similarity for image quality assessment",
    Asilomar 2003 (5 scales, weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333).
"""

from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from spips_pyiqa.archs.constant_cache import cached_constant
from spips_pyiqa.archs.gaussian_filter import gaussian_filter
from spips_pyiqa.archs.resize import resize_bilinear, resize_mean_weights

MS_SSIM_SCALES = 5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: Channels of the traditional map stack: PSNR, SSIM, then one per MS-SSIM scale.
TRADITIONAL_CHANNELS = 2 + MS_SSIM_SCALES
#: PSNR above this many dB (differences below ~1/3 of an 8-bit grey level) counts as identical.
PSNR_MAX_DB = 50.0
#: Floor of the local MSE, so the log stays finite (and its gradient too) at target == reference.
MSE_FLOOR = 1e-10
_K1, _K2 = 0.01, 0.03
#: On CPU, :func:`traditional_maps` works on chunks of about this many pixels (two 256 px images):
#: measured faster than whole batches, whose intermediates overflow the caches.
CPU_CHUNK_PIXELS = 2**17


def gaussian_kernel_1d(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    r"""Normalised 1-D Gaussian window.

    Shape:
        Output: :math:`(\text{size},)`.
    """
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    kernel = torch.exp(-(coords**2) / (2 * sigma**2))
    return (kernel / kernel.sum()).float()


#: BT.601 luma row of pyiqa's ``rgb2ycbcr`` (8-bit scale): ``Y = (w . rgb + 16) / 255``.
LUMA_WEIGHTS = (65.481, 128.553, 24.966)
LUMA_OFFSET = 16.0


@cached_constant(maxsize=16)
def _luma_weights(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # float32 constants first, as pyiqa's rgb2ycbcr has them (also when computing in float64)
    return torch.tensor([LUMA_WEIGHTS], dtype=torch.float32).to(device=device, dtype=dtype)


def luma(image: torch.Tensor) -> torch.Tensor:
    r"""Luma in [0, 1], equal (to float rounding) to pyiqa's ``to_y_channel(image, 1.0, 'ycbcr')``.

    pyiqa computes all three YCbCr channels of a channels-last copy and keeps one; here one
    batched matrix-vector product computes Y alone.

    Shape:
        - image: :math:`(N, 3, H, W)`.
        - Output: :math:`(N, 1, H, W)`.
    """
    batch, _, height, width = image.shape
    y = torch.matmul(_luma_weights(image.device, image.dtype), image.reshape(batch, 3, height * width))
    return ((y + LUMA_OFFSET) / 255.0).view(batch, 1, height, width)


def cat_channels(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""``torch.cat(tensors, dim=1)``, concatenated as 3-D :math:`(N, C_i, HW)` views.

    The same tensor, but under ``torch.compile`` it stays planar: inductor gives a concatenation
    the channels-last layout when an input is channels-last contiguous, which every
    :math:`(N, 1, H, W)` map is, and the filter's gathers then read each plane with a stride of
    :math:`C` (measured, compiled traditional part: 4.1 -> 3.1 ms at 64 px x50, 14.0 -> 12.2 ms at
    256 px x8; 3-D tensors are never channels-last).

    Shape:
        - tensors: :math:`(N, C_i, H, W)`.
        - Output: :math:`(N, \sum_i C_i, H, W)`.
    """
    batch, _, height, width = tensors[0].shape
    flat = torch.cat([t.reshape(batch, t.shape[1], height * width) for t in tensors], dim=1)
    return flat.view(batch, flat.shape[1], height, width)  # no -1: an empty batch leaves it undefined


class SSIMComponents(NamedTuple):
    """Per-pixel luminance term ``l`` and contrast-structure term ``cs`` of SSIM."""

    luminance: torch.Tensor
    contrast_structure: torch.Tensor


def local_statistics(pair: torch.Tensor, kernel: torch.Tensor, extra: Optional[torch.Tensor] = None) -> torch.Tensor:
    r"""Gaussian-weighted local moments of an image pair, all in one filtering call.

    Channels of the output: :math:`\mu_x, \mu_y, E[x^2 + y^2], E[(x - y)^2]`, then the filtered
    ``extra`` channels (SPIPS passes the squared error of eq. 1, so one call serves PSNR too).
    SSIM needs the two second moments only summed (:class:`_SSIMTerms`), so they are filtered as
    one channel.

    Shape:
        - pair: :math:`(N, 2, H, W)`, ``x`` then ``y``.
        - extra: :math:`(N, E, H, W)` or ``None``.
        - Output: :math:`(N, 4 + E, H, W)`.
    """
    x, y = pair.unbind(dim=1)  # unbind, not slices: one cheap node in the backward
    difference = x - y  # E[(x - y)^2] rather than E[xy]: exactly 0 for identical images (_SSIMTerms)
    planes = [pair, (x * x + y * y).unsqueeze(1), (difference * difference).unsqueeze(1)]
    if extra is not None:
        planes.append(extra)
    return gaussian_filter(cat_channels(planes), kernel)


class _SSIMTerms(torch.autograd.Function):
    r"""``l`` and ``cs`` from the moments as one autograd node with a hand-written backward.

    With :math:`D = \mu_x - \mu_y`, :math:`B_1 = \mu_x^2 + \mu_y^2 + C_1`,
    :math:`B_2 = E[x^2 + y^2] - \mu_x^2 - \mu_y^2 + C_2` and :math:`Q = E[(x - y)^2]`,

    .. math::
        l = \frac{2\mu_x\mu_y + C_1}{B_1} = 1 - \frac{D^2}{B_1}, \qquad
        cs = \frac{2\sigma_{xy} + C_2}{B_2} = 1 - \frac{Q - D^2}{B_2}

    (the same functions; written as 1 minus a distance so that identical images give exactly 1 and
    near-identical ones lose no precision to float32 cancellation). Derivatives:
    :math:`\partial l/\partial\mu_x = 2(\mu_y - l\mu_x)/B_1`,
    :math:`\partial cs/\partial\mu_x = 2(cs\,\mu_x - \mu_y)/B_2`,
    :math:`\partial cs/\partial E[x^2 + y^2] = (1 - cs)/B_2`, :math:`\partial cs/\partial Q = -1/B_2`
    (symmetric in x and y). About half the work of autograd's dozen nodes.
    """

    @staticmethod
    def forward(ctx, stats: torch.Tensor):
        c1, c2 = _K1**2, _K2**2
        means, energy, difference = stats.split([2, 1, 1], dim=1)
        mu_x, mu_y = means.unbind(dim=1)
        mean_gap = (mu_x - mu_y).unsqueeze(1)
        gap_squared = mean_gap * mean_gap
        mean_energy = (means * means).sum(dim=1, keepdim=True)  # mu_x^2 + mu_y^2
        luminance_den = mean_energy + c1
        luminance = 1 - gap_squared / luminance_den
        contrast_den = energy - mean_energy + c2
        contrast_structure = 1 - (difference - gap_squared) / contrast_den
        ctx.save_for_backward(means, luminance, luminance_den, contrast_structure, contrast_den)
        return luminance, contrast_structure

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_luminance: torch.Tensor, grad_contrast: torch.Tensor):
        means, luminance, luminance_den, contrast_structure, contrast_den = ctx.saved_tensors
        per_luminance = grad_luminance / luminance_den
        per_contrast = grad_contrast / contrast_den
        swapped = means.flip(1)  # (mu_y, mu_x)
        grad_means = per_luminance * (swapped - luminance * means) + per_contrast * (contrast_structure * means - swapped)
        grad_energy = per_contrast * (1 - contrast_structure)
        return cat_channels([2 * grad_means, grad_energy, -per_contrast])


def components_from_statistics(stats: torch.Tensor) -> SSIMComponents:
    r"""SSIM's ``l`` and ``cs`` maps for data range 1 from the moments of :func:`local_statistics`.

    Shape:
        - stats: :math:`(N, 4, H, W)`: :math:`\mu_x, \mu_y, E[x^2 + y^2], E[(x - y)^2]`.
        - Output: two tensors of shape :math:`(N, 1, H, W)`.
    """
    return SSIMComponents(*_SSIMTerms.apply(stats))


def ssim_components(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> SSIMComponents:
    r"""Same-size maps of SSIM's ``l`` and ``cs`` terms for data range 1 (the factors of eq. 2).

    The four local statistics are filtered in one call (:func:`local_statistics`).

    Shape:
        - x, y: :math:`(N, 1, H, W)` in [0, 1].
        - Output: two tensors of shape :math:`(N, 1, H, W)`.
    """
    return components_from_statistics(local_statistics(cat_channels([x, y]), kernel))


def squared_error(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""Per-pixel squared error averaged over channels (what eq. 1's local MSE filters).

    Shape:
        - x, y: :math:`(N, C, H, W)`.
        - Output: :math:`(N, 1, H, W)`.
    """
    difference = x - y
    return (difference * difference).mean(dim=1, keepdim=True)


def psnr_distance_from_mse(local_mse: torch.Tensor) -> torch.Tensor:
    r"""Eq. (1) from the local MSE: ``1 - clip(10 log10(1 / max(MSE, MSE_FLOOR)) / PSNR_MAX_DB, 0, 1)``.

    Shape:
        - local_mse: :math:`(N, 1, H, W)`.
        - Output: :math:`(N, 1, H, W)` in [0, 1].
    """
    psnr = -10.0 * torch.log10(local_mse.clamp_min(MSE_FLOOR))
    return 1.0 - (psnr / PSNR_MAX_DB).clamp(0.0, 1.0)


def psnr_distance_map(x: torch.Tensor, y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Flipped, normalised local PSNR map, eq. (1).

    The local MSE is the Gaussian-weighted mean of the squared error over the window and the
    channels; ``PSNR_loc = 10 log10(1 / max(MSE_loc, MSE_FLOOR))`` is clipped to
    ``[0, PSNR_MAX_DB]`` and divided by it.

    Shape:
        - x, y: :math:`(N, C, H, W)` in [0, 1].
        - Output: :math:`(N, 1, H, W)` in [0, 1].
    """
    return psnr_distance_from_mse(gaussian_filter(squared_error(x, y), kernel))


def _flipped(similarity: torch.Tensor) -> torch.Tensor:
    """``1 - clip(similarity, 0, 1)``: a similarity map as a distance map (eqs. 2-3)."""
    return 1.0 - similarity.clamp(0.0, 1.0)


def _resized(distance: torch.Tensor, size) -> torch.Tensor:
    """``distance`` bilinearly resized to ``size`` (unchanged when it has that size already)."""
    if distance.shape[-2:] != tuple(size):
        distance = resize_bilinear(distance, tuple(size))
    return distance


def _resized_mean(distance: torch.Tensor, size) -> torch.Tensor:
    """Spatial mean of ``_resized(distance, size)``, shape :math:`(N, C)`, without resizing."""
    if distance.shape[-2:] == tuple(size):
        return distance.mean(dim=(2, 3))
    rows, cols = (resize_mean_weights(n, out, distance.device, distance.dtype) for n, out in zip(distance.shape[-2:], size))
    return torch.matmul(torch.matmul(distance, cols), rows)  # 2-D @ 1-D products: no broadcast


def _first_scale(
    pair: Optional[torch.Tensor],
    kernel: torch.Tensor,
    extra: Optional[torch.Tensor],
    finish: Callable,
    needed: Sequence[bool],
) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor], Optional[torch.Tensor]]:
    """Scale 1 of eqs. (1)-(3): the SSIM and first MS-SSIM distances through
    ``finish`` (``None`` where not ``needed``), ``extra`` filtered, and the 2x average-pooled pair
    where a coarser scale is needed (else ``None``)."""
    size = (pair if pair is not None else extra).shape[-2:]
    ssim = first = filtered_extra = pooled = None
    if needed[1] or needed[2]:
        stats = local_statistics(pair, kernel, extra)
        if extra is not None:
            stats, filtered_extra = stats.split([4, extra.shape[1]], dim=1)
        luminance, contrast_structure = components_from_statistics(stats)
        if needed[1]:
            ssim = finish(_flipped(luminance * contrast_structure), size)
        if needed[2]:
            first = finish(_flipped(contrast_structure), size)
    elif extra is not None:  # PSNR alone at scale 1
        filtered_extra = gaussian_filter(extra, kernel)
    if any(needed[3:]):
        pooled = F.avg_pool2d(pair, kernel_size=2, ceil_mode=True)
    return ssim, first, filtered_extra, pooled


def _coarse_scales(
    pair: Optional[torch.Tensor], kernel: torch.Tensor, size, finish: Callable, needed: Sequence[bool]
) -> List[Optional[torch.Tensor]]:
    """MS-SSIM distances of scales 2..S (``cs``, the last ``l * cs``) through ``finish(distance,
    size)``, from the pair already pooled once (``None``: no coarse scale is needed); ``None``
    where not ``needed`` (channels 3..7)."""
    maps: List[Optional[torch.Tensor]] = [None] * (MS_SSIM_SCALES - 1)
    for scale in range(1, MS_SSIM_SCALES if pair is not None else 1):
        if not any(needed[2 + scale :]):
            break
        if scale > 1:
            pair = F.avg_pool2d(pair, kernel_size=2, ceil_mode=True)
        if not needed[2 + scale]:
            continue
        luminance, contrast_structure = components_from_statistics(local_statistics(pair, kernel))
        term = luminance * contrast_structure if scale == MS_SSIM_SCALES - 1 else contrast_structure
        maps[scale - 1] = finish(_flipped(term), size)
    return maps


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
    pair = cat_channels([x, y])
    ssim, first, _, pooled = _first_scale(pair, kernel, None, _resized, (True,) * TRADITIONAL_CHANNELS)
    coarse = _coarse_scales(pooled, kernel, pair.shape[-2:], _resized, (True,) * TRADITIONAL_CHANNELS)
    return torch.cat([ssim, first, *coarse], dim=1)


def traditional_maps(target: torch.Tensor, ref: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    r"""Stack of the traditional distance maps of eqs. (1)-(3).

    Equal to ``cat([psnr_distance_map(target, ref), ssim_distance_maps(luma(target), luma(ref))])``
    but faster: the squared error of eq. (1) is filtered in the same call as the first SSIM scale's
    moments, both lumas are pooled together, and on CPU the first scale is processed
    :data:`CPU_CHUNK_PIXELS` pixels at a time, so that a chunk's intermediates stay in the cache
    (images are independent: the result is the same); the coarser scales, a third of the pixels
    but most of the operations, take the whole batch at once.

    Shape:
        - target, ref: :math:`(N, 3, H, W)` in [0, 1].
        - kernel: 1-D Gaussian window, see :func:`gaussian_kernel_1d`.
        - Output: :math:`(N, 7, H, W)` in [0, 1]: PSNR, SSIM, MS-SSIM scales 1..5; all zero where
          ``target == ref``.
    """
    return torch.cat(_all_maps(target, ref, kernel, _resized, (True,) * TRADITIONAL_CHANNELS), dim=1)


def traditional_means(
    target: torch.Tensor, ref: torch.Tensor, kernel: torch.Tensor, needed: Optional[Sequence[bool]] = None
) -> torch.Tensor:
    r"""Spatial means of the maps of :func:`traditional_maps`, computed without resizing any map.

    Bilinear resizing is linear, so the mean of a resized coarse MS-SSIM map is a fixed weighted
    sum of the coarse map (:func:`~spips_pyiqa.archs.resize.resize_mean_weights`): equal to float
    rounding, and the upsampled maps (and their backward) are never formed. Channels whose
    ``needed`` entry is false are not computed and read 0; scales past the last needed channel are
    skipped altogether.

    Shape:
        - target, ref: :math:`(N, 3, H, W)` in [0, 1].
        - needed: :data:`TRADITIONAL_CHANNELS` booleans, or ``None`` for all.
        - Output: :math:`(N, 7)`.
    """
    needed = tuple(bool(n) for n in needed) if needed is not None else (True,) * TRADITIONAL_CHANNELS
    if len(needed) != TRADITIONAL_CHANNELS:
        raise ValueError(f'needed must have {TRADITIONAL_CHANNELS} entries, got {len(needed)}')
    maps = _all_maps(target, ref, kernel, _resized_mean, needed)
    zero = target.new_zeros(target.shape[0], 1)
    return torch.cat([zero if m is None else m for m in maps], dim=1)


def _all_maps(
    target: torch.Tensor, ref: torch.Tensor, kernel: torch.Tensor, finish: Callable, needed: Sequence[bool]
) -> List[Optional[torch.Tensor]]:
    """The seven maps through ``finish``, ``None`` where ``needed`` is false: the first scale in
    chunks (:func:`_in_chunks`), the coarser ones on the whole batch."""
    if not any(needed):
        return [None] * TRADITIONAL_CHANNELS
    psnr, ssim, first, pooled = _in_chunks(target, ref, lambda t, r: _first_scale_maps(t, r, kernel, finish, needed))
    return [psnr, ssim, first, *_coarse_scales(pooled, kernel, target.shape[-2:], finish, needed)]


def _first_scale_maps(
    target: torch.Tensor, ref: torch.Tensor, kernel: torch.Tensor, finish: Callable, needed: Sequence[bool]
) -> Tuple[Optional[torch.Tensor], ...]:
    """PSNR, SSIM and first MS-SSIM distances of one chunk through ``finish`` (``None`` where not
    ``needed``), and the chunk's 2x pooled luma pair where a coarser scale is needed."""
    extra = squared_error(target, ref) if needed[0] else None
    pair = cat_channels([luma(target), luma(ref)]) if any(needed[1:]) else None
    ssim, first, local_mse, pooled = _first_scale(pair, kernel, extra, finish, needed)
    psnr = finish(psnr_distance_from_mse(local_mse), target.shape[-2:]) if needed[0] else None
    return psnr, ssim, first, pooled


def _in_chunks(target: torch.Tensor, ref: torch.Tensor, compute: Callable) -> Tuple[Optional[torch.Tensor], ...]:
    """``compute(target, ref)`` (a tuple of per-image tensors or ``None``), eagerly on CPU over
    chunks of about :data:`CPU_CHUNK_PIXELS` pixels, each entry concatenated over the chunks.

    Under ``torch.compile`` the whole batch at once: inductor fuses the chunk's intermediates
    itself, unrolled chunks would multiply the graph (and the compile time) by their number, and
    the graph does not depend on the batch size (no recompile for another one)."""
    if torch.compiler.is_compiling() or target.device.type != 'cpu':
        return compute(target, ref)
    batch, _, height, width = target.shape
    chunk = max(1, CPU_CHUNK_PIXELS // (height * width))
    if chunk >= batch:
        return compute(target, ref)
    # split (not slices): its backward concatenates the chunks' gradients once
    parts = [compute(t, r) for t, r in zip(target.split(chunk), ref.split(chunk))]
    return tuple(None if part[0] is None else torch.cat(part) for part in zip(*parts))
