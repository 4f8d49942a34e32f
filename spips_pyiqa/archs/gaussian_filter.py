r"""Separable same-size filtering with replicate padding: the local statistics of eqs. (1)-(3).

SPIPS's traditional maps need, at every pixel and every MS-SSIM scale, Gaussian-weighted local means
(Wang et al. 2004: 11x11 window, sigma 1.5). With replicate ("same") padding, filtering one axis of
length ``n`` is a product with an ``n x n`` banded matrix ``B`` whose row ``i`` holds the kernel
centred on ``i``, taps falling outside ``[0, n)`` added to the border element
(:func:`banded_filter_matrix`). This module computes ``B_H X B_W^T`` per channel three ways, all
equal to float32 rounding, and picks one per device and size (:func:`filter_method`):

- ``'banded'``: two dense products with ``B_H`` and ``B_W``; ``2 (H + W)`` multiply-adds per pixel,
  but BLAS runs them near peak: the fastest for small images on CPU and up to 2048 px on GPUs;
- ``'tiled'`` (CPU, larger images): each axis is cut into blocks of :data:`BLOCK` outputs; a block
  depends on ``BLOCK + k - 1`` inputs (``k`` taps), gathered with clamped indices (which *is*
  replicate padding) and multiplied by one ``(BLOCK + k - 1) x BLOCK`` Toeplitz matrix, so the cost
  per pixel no longer grows with the image side. Each pass writes its blocks transposed, so both
  passes gather contiguous rows and one final permutation restores the layout;
- ``'conv'``: two grouped 1-D convolutions after replicate padding (above 2048 px off CPU).

Matrices and gather indices are cached per (size, kernel, device, dtype)
(:func:`~spips_pyiqa.archs.constant_cache.cached_for_kernel`; under ``torch.compile`` the graph
builds them). Filtering is linear, so its gradient is its adjoint ``B_H^T G B_W``, computed by each
method's steps backwards (a gather's adjoint is a scatter-add, a product's a product, a
convolution's a transposed one): exact too. Filter and adjoint are one custom operator, so that
``torch.compile`` runs a loss's filters with ATen's kernels (inductor's generated scatter-adds
took 11 ms of a 42 ms compiled loss step at 256 px x8); a compiled call without a gradient traces
the filter instead, and inductor fuses its gathers with their neighbours.

Shape conventions: images :math:`(N, C, H, W)`, kernels :math:`(k,)` with ``k`` odd.
"""

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from spips_pyiqa.archs.axis_products import axis_products
from spips_pyiqa.archs.constant_cache import cached_for_kernel

#: Outputs per block of the tiled method (measured: 32 is the best compromise from 128 to 1024 px;
#: 16 is 3x slower at 1024 px, 64 slower everywhere).
BLOCK = 32
#: On CPU, images whose larger side exceeds this are filtered tiled, smaller ones banded.
TILED_MIN_SIZE = 96
#: Off CPU, up to this image side filtering is two banded products, above it convolutions.
BANDED_MAX_SIZE = 2048
#: The tiled method filters at most this many pixels (whole planes, at least one) per call.
#: Measured (traditional maps as a loss, 2-core machine): 1024 px 145 -> 115 ms against all planes
#: at once; neutral at 256 and 512 px.
TILED_GROUP_PIXELS = 2**18
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


class TilePlan(NamedTuple):
    """How the tiled method filters one axis of length ``size``."""

    blocks: int  #: ``ceil(size / BLOCK)``
    index: torch.Tensor  #: (blocks * window,) input positions of each block's window, clamped
    matrix: torch.Tensor  #: (window, BLOCK) Toeplitz: ``outputs = window_values @ matrix``


def tile_plan(size: int, kernel: torch.Tensor, block: int = BLOCK) -> TilePlan:
    r"""Gather indices and block matrix that filter an axis of length ``size`` in blocks.

    Block ``j`` computes outputs ``j * block + i`` (``0 <= i < block``) from the inputs at
    ``j * block - r + t`` (``0 <= t < block + 2r``, ``r`` = kernel radius), clamped to
    ``[0, size)``: clamping is replicate padding. Outputs past ``size`` are computed and dropped.

    Shape:
        - kernel: :math:`(k,)`, ``k = 2r + 1``.
        - Output: ``index`` :math:`(\text{blocks} (\text{block} + 2r),)`, ``matrix``
          :math:`(\text{block} + 2r, \text{block})`.
    """
    taps = kernel.numel()
    blocks = -(-size // block)
    starts = torch.arange(blocks, device=kernel.device) * block - taps // 2
    index = (starts[:, None] + torch.arange(block + taps - 1, device=kernel.device)).clamp(0, size - 1)
    # column ``out`` holds the kernel from row ``out`` on: entry (t, out) is kernel[t - out]
    tap = torch.arange(block + taps - 1, device=kernel.device)[:, None] - torch.arange(block, device=kernel.device)
    inside = (tap >= 0) & (tap < taps)
    matrix = torch.where(inside, kernel[tap.clamp(0, taps - 1)], kernel.new_zeros(()))
    return TilePlan(blocks, index.flatten(), matrix)


def filter_method(size: int, device: torch.device) -> str:
    """``'banded'``, ``'tiled'`` or ``'conv'`` for an image whose larger side is ``size``.

    The thresholds were chosen by measurement (single-thread CPU time on the 2-core development
    machine, forward of 6 channels): at 64 px banded and tiled cost the same, at 128 px tiled is
    1.7x faster, at 256 px 2.5x, at 1024 px 9x (banded products cost ``2 (H + W)`` multiply-adds
    per pixel). GPUs keep the dense banded products, which they run near peak, up to
    :data:`BANDED_MAX_SIZE`; no gathers or CPU cache tricks on that path.
    """
    if device.type == 'cpu':
        return 'banded' if size <= TILED_MIN_SIZE else 'tiled'
    return 'banded' if size <= BANDED_MAX_SIZE else 'conv'


def _per_axis(build: Callable, x: torch.Tensor, kernel: torch.Tensor) -> tuple:
    """``build(size, kernel)`` for the height and the width of ``x``, cached."""
    return tuple(
        cached_for_kernel(build.__name__, kernel, size, x, lambda size=size: build(size, kernel.to(x)))
        for size in x.shape[-2:]
    )


def _banded(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    rows, cols = _per_axis(banded_filter_matrix, x, kernel)
    return axis_products(rows, x, cols)


def _banded_adjoint(grad: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    rows, cols = _per_axis(banded_filter_matrix, grad, kernel)
    return axis_products(rows.T, grad, cols.T)


def _batched(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` for one 3-D operand (possibly a transposed view) and one matrix, either way round:
    one ``bmm`` that reads both in place. (``matmul``'s broadcasting made inductor copy transposed
    operands first where ``torch.compile`` marks the batch size dynamic.)"""
    if a.dim() == 2:
        return torch.bmm(a.expand(b.shape[0], *a.shape), b)
    return torch.bmm(a, b.expand(a.shape[0], *b.shape))


def _tiled(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    rows, cols = _per_axis(tile_plan, x, kernel)
    window, block = rows.matrix.shape
    # Pass 1 (along H): per block of rows, (W, window) @ (window, block) -> (W, block), transposed.
    gathered = x.reshape(batch * channels, height, width)[:, rows.index.view(rows.blocks, window)]
    y = _batched(gathered.flatten(0, 1).transpose(1, 2), rows.matrix)
    # Pass 2 (along W) on the (W, block) tiles, again transposed: (block_h, block_w) tiles.
    z = _batched(y[:, cols.index.view(cols.blocks, window)].flatten(0, 1).transpose(1, 2), cols.matrix)
    z = z.view(batch, channels, rows.blocks, cols.blocks, block, block).transpose(3, 4)
    return z.reshape(batch, channels, rows.blocks * block, cols.blocks * block)[..., :height, :width]


def _tiled_adjoint(grad: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`_tiled`: its steps backwards, gathers becoming scatter-adds."""
    batch, channels, height, width = grad.shape
    rows, cols = _per_axis(tile_plan, grad, kernel)
    window, block = rows.matrix.shape
    planes = batch * channels
    grad = F.pad(grad.reshape(planes, height, width), (0, cols.blocks * block - width, 0, rows.blocks * block - height))
    tiles = grad.view(planes, rows.blocks, block, cols.blocks, block).transpose(2, 3)
    tiles = tiles.reshape(-1, block, block)  # (block_h, block_w) tiles, as pass 2 wrote them
    windows = _batched(cols.matrix, tiles.transpose(1, 2))  # (window, block_h) per tile
    del grad, tiles  # free buffers as soon as they are used: the peak memory of a loss step
    y = windows.new_zeros(planes * rows.blocks, width, block)
    y.index_add_(1, cols.index, windows.view(planes * rows.blocks, -1, block))
    del windows
    windows = _batched(rows.matrix, y.transpose(1, 2))  # (window, W) per block of rows
    del y
    x = windows.new_zeros(planes, height, width)
    x.index_add_(1, rows.index, windows.view(planes, -1, width))
    return x.view(batch, channels, height, width)


def _conv(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    kernel = kernel.to(x)
    channels, pad = x.shape[1], kernel.numel() // 2
    x = F.pad(x, (pad, pad, pad, pad), mode='replicate')
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def _fold_padding(x: torch.Tensor, pad: int, dim: int) -> torch.Tensor:
    """The adjoint of replicate padding by ``pad`` along ``dim``: the padded borders' values added to
    the first and last kept elements, then cropped."""
    size = x.shape[dim] - 2 * pad
    head, body, tail = x.split([pad, size, pad], dim=dim)
    body = body.clone()
    body.narrow(dim, 0, 1).add_(head.sum(dim, keepdim=True))
    body.narrow(dim, size - 1, 1).add_(tail.sum(dim, keepdim=True))
    return body


def _conv_adjoint(grad: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`_conv`: transposed convolutions, then the padding folded back."""
    kernel = kernel.to(grad)
    channels, pad = grad.shape[1], kernel.numel() // 2
    grad = F.conv_transpose2d(grad, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    grad = F.conv_transpose2d(grad, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return _fold_padding(_fold_padding(grad, pad, 2), pad, 3)


def _in_plane_groups(apply: Callable) -> Callable:
    """``apply(x, kernel)`` over groups of whole planes of at most :data:`TILED_GROUP_PIXELS`
    pixels each (at least one plane), concatenated: filtering is per plane, so the result is the
    same, and a group's gathered copies stay in the cache. Under ``torch.compile`` all planes at
    once (the number of groups would depend on the dynamic batch size: a recompile per size)."""

    def grouped(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        per_group = max(1, TILED_GROUP_PIXELS // (height * width))
        if torch.compiler.is_compiling() or per_group >= batch * channels:
            return apply(x, kernel)
        planes = x.reshape(batch * channels, 1, height, width)
        return torch.cat([apply(group, kernel) for group in planes.split(per_group)]).view(x.shape)

    return grouped


_METHODS = {
    'banded': (_banded, _banded_adjoint),
    'tiled': (_in_plane_groups(_tiled), _in_plane_groups(_tiled_adjoint)),
    'conv': (_conv, _conv_adjoint),
}


#: The custom operator's name (as profiles show it).
OPERATOR = 'spips_pyiqa::separable_filter'


@torch.library.custom_op(OPERATOR, mutates_args=())
def _filter_op(x: torch.Tensor, kernel: torch.Tensor, method: str, adjoint: bool) -> torch.Tensor:
    """The filter (or its adjoint) by ``method`` as one operator: ``torch.compile`` calls it as it is
    (its gathers, products and scatter-adds: ATen's kernels) rather than lowering them to generated
    loops, and the result is contiguous, as the operator's declared layout says."""
    return _METHODS[method][int(adjoint)](x.contiguous() if adjoint else x, kernel).contiguous()


@_filter_op.register_fake
def _(x: torch.Tensor, kernel: torch.Tensor, method: str, adjoint: bool) -> torch.Tensor:
    return torch.empty_like(x, memory_format=torch.contiguous_format)


def _save_filter(ctx, inputs: tuple, output: torch.Tensor) -> None:
    _, ctx.kernel, ctx.method, ctx.adjoint = inputs


def _filter_gradient(ctx, grad: torch.Tensor):
    """Filtering is linear: its gradient is its adjoint (and the adjoint's the filter)."""
    return _filter_op(grad, ctx.kernel, ctx.method, not ctx.adjoint), None, None, None


_filter_op.register_autograd(_filter_gradient, setup_context=_save_filter)


def gaussian_filter(x: torch.Tensor, kernel: torch.Tensor, method: str = '') -> torch.Tensor:
    r"""Separable, same-size filtering of every channel with replicate padding: ``B_H X B_W^T``.

    Replicate padding works for any size, even maps smaller than the window (coarse MS-SSIM scales
    of 64 px patches). ``method`` (``'banded'``, ``'tiled'``, ``'conv'``) defaults to
    :func:`filter_method`; all give the same result to float32 rounding.

    Shape:
        - x: :math:`(N, C, H, W)`.
        - kernel: :math:`(k,)`, ``k`` odd.
        - Output: :math:`(N, C, H, W)`.
    """
    method = method or filter_method(max(x.shape[-2:]), x.device)
    if kernel.requires_grad or (torch.compiler.is_compiling() and not (torch.is_grad_enabled() and x.requires_grad)):
        # a learnable window: plain autograd through the chosen method; compiled without a gradient:
        # traced, so that inductor fuses the gathers with their neighbours (measured, 256 px x8:
        # compiled forward 5% faster than through the operator, whose backward pays as a loss)
        return _METHODS[method][0](x, kernel)
    return _filter_op(x, kernel, method, False)
