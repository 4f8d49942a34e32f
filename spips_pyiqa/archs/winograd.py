r"""Winograd minimal filtering: stride-1 "same" convolutions with fewer multiplications (CPU speed).

Lavin & Gray compute a convolution tile by tile: each :math:`m \times m` output tile of an
:math:`r \times r` kernel :math:`g` comes from an :math:`a \times a` input tile :math:`d`,
:math:`a = m + r - 1`, as (their eq. 8)

.. math::
    Y = A^\top \big[ (G g G^\top) \odot (B^\top d B) \big] A,

summed over input channels inside the elementwise product. Per tile and channel pair that is
:math:`a^2` multiplications instead of :math:`m^2 r^2`: for F(3x3, 3x3), 25 instead of 81, and
summed over channels the products are :math:`a^2` matrix products, here one grouped 1x1
convolution that oneDNN runs near peak. :math:`A, G, B` are the Cook-Toom matrices of :math:`a - 1` interpolation points and the
point at infinity (:func:`winograd_matrices`); small points such as 0, +-1, 1/2 keep the float32
rounding error small (Barabasz et al.). Here both axes are transformed at once with Kronecker
products, :math:`\mathrm{vec}(B^\top d B) = (B^\top \otimes B^\top) \mathrm{vec}(d)`, so each
transform is one matrix product over all tiles. The whole convolution is one custom operator, so
``torch.compile`` calls it as it is.

The gradient to the input of a convolution is the convolution of the output gradient with the
kernel flipped and its channels swapped; flipping the kernel is flipping the tiles, so the backward
reuses the same transformed kernel (its channels swapped) with reversed tile transforms.

References:
    A. Lavin and S. Gray, "Fast algorithms for convolutional neural networks", CVPR 2016, eq. (8).
    B. Barabasz, A. Anderson, K. M. Soodhalter and D. Gregg, "Error analysis and improving the
    accuracy of Winograd convolution for deep neural networks", ACM TOMS 46(4), 2020.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from spips_pyiqa.archs.constant_cache import cached_constant
from spips_pyiqa.archs.prepacked import grouped_pointwise_conv

#: Output tile side ``m`` of F(m x m, r x r), per kernel side ``r``, and its interpolation points.
#: F(3x3, 3x3) (25 products per tile instead of 81): measured against F(4x4, 3x3) and F(2x2, 3x3) on
#: AlexNet's 3x3 layers (2-core CPU, forward), it is as fast on 15 px maps (0.63-0.65x the direct
#: convolution's time) and the only one faster on the 3 px maps of 64 px images (0.72-0.77x, where
#: the others take 1.2-1.6x), with half F(4x4, 3x3)'s rounding error (3e-6 of the largest output).
TILES = {3: (3, (0.0, 1.0, -1.0, 0.5))}
#: Winograd pays where its whole tiles cover at most this many times the output pixels. Measured
#: as above: 3 and 15 px maps (cover 1) 0.63-0.77x the direct time; 7 px maps (cover 1.65) 1.1-1.2x.
MAX_TILE_COVER = 4 / 3


def winograd_pays(height: int, width: int, kernel_size: int) -> bool:
    """Whether an ``height x width`` output is computed faster by Winograd (:data:`MAX_TILE_COVER`)."""
    m = TILES[kernel_size][0]
    return -(-height // m) * -(-width // m) * m * m <= MAX_TILE_COVER * height * width


def winograd_matrices(m: int, r: int, points: Sequence[float]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Cook-Toom matrices :math:`A^\top` (m x a), :math:`G` (a x r), :math:`B^\top` (a x a) of
    F(m, r), :math:`a = m + r - 1`, from :math:`a - 1` finite ``points`` and infinity (float64).

    With :math:`f_i = \prod_{k \ne i} (p_i - p_k)`: row :math:`i` of :math:`A` holds
    :math:`p_i^j`, of :math:`G` :math:`p_i^j / f_i`, and row :math:`i` of :math:`B^\top` the
    coefficients of :math:`\prod_{k \ne i} (x - p_k)` (the point at infinity adds the last rows).
    """
    a = m + r - 1
    p = np.asarray(points, dtype=np.float64)
    if len(p) != a - 1 or len(set(points)) != a - 1:
        raise ValueError(f'F({m}, {r}) needs {a - 1} distinct points, got {points}')
    f = np.array([np.prod([p[i] - p[k] for k in range(a - 1) if k != i]) for i in range(a - 1)])
    evaluate = np.zeros((a, m))
    evaluate[:-1], evaluate[-1, -1] = p[:, None] ** np.arange(m), 1.0
    kernel = np.zeros((a, r))
    kernel[:-1], kernel[-1, -1] = p[:, None] ** np.arange(r) / f[:, None], 1.0
    lagrange = np.zeros((a - 1, a - 1))  # row j: coefficient of x^j in prod_{k != i} (x - p_k) / f_i
    for i in range(a - 1):
        lagrange[:, i] = np.poly([p[k] for k in range(a - 1) if k != i])[::-1] / f[i]
    # x^(a-1) is reduced modulo prod_k (x - p_k); the point at infinity keeps it as the last row
    reduced = lagrange @ np.concatenate([np.eye(a - 1), -(p ** (a - 1))[:, None]], axis=1)
    input_transform = np.diag(np.append(f, 1.0)) @ np.concatenate([reduced, np.eye(a)[-1:]]).T
    return evaluate.T, kernel, input_transform


def _kronecker_transforms(r: int) -> Dict[str, torch.Tensor]:
    r"""Both axes at once, float64: the input transform :math:`B^\top \otimes B^\top` (a^2 x a^2),
    the output transform :math:`A^\top \otimes A^\top` (m^2 x a^2), both for tiles read backwards
    (the flipped kernel of the backward), and the kernel transform :math:`G \otimes G` (a^2 x r^2)."""
    m, points = TILES[r]
    out_t, kernel_t, in_t = (torch.from_numpy(x) for x in winograd_matrices(m, r, points))
    both = lambda t: torch.kron(t, t)  # noqa: E731
    return {'into': both(in_t), 'out_of': both(out_t), 'into_reversed': both(in_t.flip(1)),
            'out_of_reversed': both(out_t.flip(0)), 'kernel': both(kernel_t)}


#: :func:`_kronecker_transforms` per kernel side, built once at import (never inside a compiled graph).
TRANSFORMS = {r: _kronecker_transforms(r) for r in TILES}


@cached_constant(maxsize=16)
def _transforms(r: int, reverse: bool, device: torch.device, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """The input and output transforms of :data:`TRANSFORMS` on ``device`` in ``dtype``."""
    suffix = '_reversed' if reverse else ''
    return tuple(TRANSFORMS[r][name + suffix].to(device=device, dtype=dtype) for name in ('into', 'out_of'))


def transform_kernel(weight: torch.Tensor) -> torch.Tensor:
    r""":math:`G g G^\top` for every (output, input) channel pair of a convolution weight, laid out
    as the weight of the grouped 1x1 convolution that computes the :math:`a^2` channel products
    (:func:`_tile_products`): group :math:`k` holds tile position :math:`k`'s
    :math:`C_{out} \times C_{in}` matrix.

    Shape:
        - weight: :math:`(C_{out}, C_{in}, r, r)`.
        - Output: :math:`(a^2 C_{out}, C_{in}, 1, 1)`.
    """
    out_channels, in_channels, r, _ = weight.shape
    both = TRANSFORMS[r]['kernel'].to(weight.device)  # (a^2, r^2)
    flat = weight.detach().double().reshape(out_channels * in_channels, r * r)
    transformed = (flat @ both.T).view(out_channels, in_channels, -1).permute(2, 0, 1)  # (a^2, C_out, C_in)
    return transformed.reshape(-1, in_channels, 1, 1).to(weight.dtype).contiguous()


def _swapped(kernel: torch.Tensor, out_channels: int) -> torch.Tensor:
    """The transformed kernel of the transposed convolution (input and output channels swapped):
    :math:`(a^2 C_{out}, C_{in}, 1, 1) \\to (a^2 C_{in}, C_{out}, 1, 1)`."""
    in_channels = kernel.shape[1]
    return kernel.view(-1, out_channels, in_channels).transpose(1, 2).reshape(-1, out_channels, 1, 1)


#: Bytes of transformed tiles (tiles x a^2 x channels) per grouped product: a larger call is made
#: in turns of whole images, or of rows of tiles within an image, so that intermediates stay within
#: what the memory allocator reuses. Measured (2-core CPU, AlexNet's conv3-5 at 256 px): whole
#: batches of 16 images (15 MB intermediates) drew thousands of fresh pages per call and took up to
#: 3x the time; 8 MiB turns (8 images) none.
TURN_BYTES = 2**23


def _even(count: int, most: int) -> int:
    """Turn size for ``count`` items at most ``most`` (at least 1) at a time, in turns as even as
    possible: every turn of a batch then has the same size but perhaps the last (one packed weight
    serves all, ``prepacked.py``)."""
    turns = -(-count // max(1, most))
    return -(-count // turns) if count else 1


def _joined(parts: List[torch.Tensor], dim: int) -> torch.Tensor:
    """``torch.cat(parts, dim)``, without a copy for a single part."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


def _tile_products(x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor], r: int, reverse: bool) -> torch.Tensor:
    r"""The tile-by-tile convolution of eq. (8) with a transformed ``kernel``, zero padding ``r // 2``;
    with ``reverse``, that of the transposed convolution (the input gradient: the kernel's channels
    swapped, the tiles read backwards).

    Each tile's :math:`a \times a` inputs are transformed at once (one product with
    :math:`B^\top \otimes B^\top`); the :math:`a^2` channel products are one grouped 1x1
    convolution over all tiles, laid out channels-last (oneDNN runs it near peak, about twice
    MKL's ``bmm`` on the development machine's AMD CPU); one product with
    :math:`A^\top \otimes A^\top` gives the output tiles. At most :data:`TURN_BYTES` of tiles at a
    time; the products through oneDNN's packed weights (``prepacked.py``).

    Shape:
        - x: :math:`(N, H, W, C)` (channels last); with ``reverse`` :math:`(N, H, W, O)`.
        - kernel: :math:`(a^2 O, C, 1, 1)` (:func:`transform_kernel`).
        - Output: :math:`(N, H, W, O)`, contiguous; with ``reverse`` :math:`(N, H, W, C)`.
    """
    m = TILES[r][0]
    a, pad = m + r - 1, r // 2
    batch, height, width, channels = x.shape
    rows, cols = -(-height // m), -(-width // m)
    bottom, right = rows * m + r - 1 - height - pad, cols * m + r - 1 - width - pad
    padded = F.pad(x, (0, 0, pad, right, pad, bottom))  # last dimensions first: C, W, H
    into, out_of = _transforms(r, reverse, x.device, x.dtype)
    kernel_out = kernel.shape[0] // (a * a)
    out_channels = kernel.shape[1] if reverse else kernel_out
    name, weight = ('input gradient', lambda: _swapped(kernel, kernel_out)) if reverse else ('forward', lambda: kernel)
    if batch == 0:  # no tile: oneDNN refuses an empty product
        return x.new_empty(0, height, width, out_channels)

    def products(images: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Output rows of tiles ``first .. last - 1`` of ``images``: :math:`(n, (last - first) m, W', O)`."""
        n, count = images.shape[0], last - first
        tiles = n * count * cols
        windows = images[:, first * m : last * m + a - m].unfold(1, a, m).unfold(2, a, m)
        windows = windows.permute(0, 1, 2, 4, 5, 3).reshape(tiles, a * a, channels)
        transformed = torch.matmul(into, windows).view(1, tiles, 1, a * a * channels).permute(0, 3, 1, 2)
        summed = grouped_pointwise_conv(transformed, kernel, name, weight, a * a)  # (1, a^2 O, tiles, 1)
        y = torch.matmul(out_of, summed.permute(0, 2, 3, 1).reshape(tiles, a * a, out_channels))
        return y.view(n, count, cols, m, m, out_channels).permute(0, 1, 3, 2, 4, 5).reshape(n, count * m, cols * m, out_channels)

    per_turn = max(1, TURN_BYTES // (a * a * max(channels, out_channels) * x.element_size()))
    images, tile_rows = _even(batch, per_turn // (rows * cols)), _even(rows, per_turn // cols)
    y = _joined([_joined([products(part, first, min(first + tile_rows, rows)) for first in range(0, rows, tile_rows)], 1)
                 for part in padded.split(images)], 0)
    y = y[:, :height, :width]
    return y + bias if bias is not None else y.contiguous()


#: The custom operator's name (as profiles show it).
OPERATOR = 'spips_pyiqa::winograd_conv2d'


@torch.library.custom_op(OPERATOR, mutates_args=())
def _winograd_op(x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor], r: int, reverse: bool) -> torch.Tensor:
    """:func:`_tile_products` as one operator: ``torch.compile`` calls it as it is (as it calls
    oneDNN's convolutions), rather than lowering its transforms to slower generated loops."""
    return _tile_products(x, kernel, bias, r, reverse)


@_winograd_op.register_fake
def _(x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor], r: int, reverse: bool) -> torch.Tensor:
    a = TILES[r][0] + r - 1
    return x.new_empty(*x.shape[:3], kernel.shape[1] if reverse else kernel.shape[0] // (a * a))


def _save_kernel(ctx, inputs: tuple, output: torch.Tensor) -> None:
    _, kernel, _, ctx.r, ctx.reverse = inputs
    ctx.save_for_backward(kernel)


def _input_gradient(ctx, grad: torch.Tensor):
    """The gradient to the input is the convolution of ``grad`` with the kernel flipped and its
    channels swapped: the same transformed kernel, swapped, with reversed tile transforms."""
    kernel, = ctx.saved_tensors
    return _winograd_op(grad.contiguous(), kernel, None, ctx.r, not ctx.reverse), None, None, None, None


_winograd_op.register_autograd(_input_gradient, setup_context=_save_kernel)


def winograd_conv2d(x: torch.Tensor, kernel: torch.Tensor, bias: Optional[torch.Tensor], kernel_size: int) -> torch.Tensor:
    r"""``F.conv2d(x, weight, bias, stride=1, padding=r // 2)`` from ``kernel = transform_kernel(weight)``
    and ``kernel_size`` :math:`r` (a key of :data:`TILES`), to float rounding; differentiable in ``x``
    only (weight and bias are constants here). Pass the same ``kernel`` tensor at every call (as
    :class:`~spips_pyiqa.archs.backbone_layout.WinogradConv2d` does): oneDNN's packed copy of it
    is kept for as long as that tensor lives.

    Shape:
        - x: :math:`(N, C_{in}, H, W)`.
        - kernel: :math:`(a^2 C_{out}, C_{in}, 1, 1)`, :math:`a^2 = 25` for a 3x3 kernel.
        - bias: :math:`(C_{out},)` or ``None``.
        - Output: :math:`(N, C_{out}, H, W)`, channels-last.
    """
    if kernel.requires_grad:
        raise ValueError('winograd_conv2d: the transformed kernel must be a constant (requires_grad=False)')
    y = _winograd_op(x.permute(0, 2, 3, 1), kernel, None if bias is None else bias.detach(), kernel_size, False)
    return y.permute(0, 3, 1, 2)
