r"""Bilinear resizing as two small matrix products (the upsampled MS-SSIM maps of eq. 3).

``F.interpolate(x, size, mode='bilinear', align_corners=False)`` is separable: along each axis,
output ``i`` mixes two neighbouring inputs with weights ``1 - t`` and ``t``. So it equals
``R_H X R_W^T`` with two ``out x in`` matrices of those weights (:func:`bilinear_matrix` takes them
from ``F.interpolate`` itself). On CPU, for small outputs (the coarse MS-SSIM scales of 64 px patches) the two
products are several times faster than ``F.interpolate``; elsewhere ``F.interpolate`` is used.
Both agree to float32 rounding.

Shape conventions: :math:`(N, C, h, w) \to (N, C, H, W)`.
"""

from typing import Tuple

import torch
import torch.nn.functional as F

from spips_pyiqa.archs.axis_products import axis_products
from spips_pyiqa.archs.constant_cache import cached_constant

#: On CPU, outputs up to this side are resized by matrix products (measured: 3x faster at 64 px,
#: slower from 128 px on).
MATRIX_MAX_SIZE = 96


@cached_constant(maxsize=64)
def bilinear_matrix(in_size: int, out_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    r"""Weights of 1-D bilinear resizing (``align_corners=False``) as a matrix: PyTorch's own,
    read off by resizing the identity (row ``j`` of the identity, resized, is column ``j``).

    Shape:
        Output: :math:`(\text{out\_size}, \text{in\_size})`.
    """
    identity = torch.eye(in_size, dtype=dtype).view(in_size, 1, in_size, 1)
    columns = F.interpolate(identity, size=(out_size, 1), mode='bilinear', align_corners=False)
    return columns[:, 0, :, 0].T.contiguous().to(device)


def resize_bilinear(x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    r"""``F.interpolate(x, size, mode='bilinear', align_corners=False)``, by matrices where faster.

    Shape:
        - x: :math:`(N, C, h, w)`.
        - Output: :math:`(N, C, H, W)` with ``(H, W) = size``.
    """
    if x.device.type != 'cpu' or max(size) > MATRIX_MAX_SIZE:
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)
    rows = bilinear_matrix(x.shape[-2], size[0], x.device, x.dtype)
    cols = bilinear_matrix(x.shape[-1], size[1], x.device, x.dtype)
    return axis_products(rows, x, cols)


@cached_constant(maxsize=64)
def resize_mean_weights(in_size: int, out_size: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    r"""Weights ``v`` such that ``v @ x`` is the mean of ``x`` resized along one axis to ``out_size``.

    Resizing is the product with :func:`bilinear_matrix` ``R``, so the mean of ``R x`` is
    ``(1^T R / \text{out\_size}) x``: the column sums of ``R`` over the output length. Along both
    axes, ``v_H^T X v_W`` is the spatial mean of ``resize_bilinear(X)``.

    Shape:
        Output: :math:`(\text{in\_size},)`.
    """
    return bilinear_matrix(in_size, out_size, torch.device('cpu'), torch.float64).sum(dim=0).div(out_size).to(device, dtype)
