r"""``L X R^T`` for every plane of a batch: a separable linear map (filter, resize) as two products.

``torch.matmul(L, X)`` with a 2-D ``L`` and a batched ``X`` broadcasts ``L`` into a batched
product over the planes; on CPU that product is the slow part of small separable maps, and under
``torch.compile`` inductor calls ``bmm(..., out=...)`` on the broadcast operand, which ATen runs
as one small product and one copy per plane (measured: 8.6 ms for 250 planes of 64x64, against
0.9 ms here). Here both factors are plain 2-D products over all planes at once: ``X R^T`` on the
rows, then ``L`` on the columns of its transpose, the result returned as a transposed view.

Shape conventions: :math:`X` is :math:`(..., h, w)`, ``L`` :math:`(H, h)`, ``R`` :math:`(W, w)`.
"""

import torch


def axis_products(left: torch.Tensor, x: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    r"""``left @ x @ right.T`` per plane of ``x``, as two 2-D matrix products.

    Shape:
        - left: :math:`(H, h)`; right: :math:`(W, w)`.
        - x: :math:`(..., h, w)`.
        - Output: :math:`(..., H, W)` (a transposed view of a contiguous :math:`(..., W, H)`).
    """
    *lead, height, width = x.shape
    out_height, out_width = left.shape[0], right.shape[0]
    along_rows = x.reshape(-1, width) @ right.T  # (planes * h, W)
    columns = along_rows.view(-1, height, out_width).transpose(1, 2).reshape(-1, height)
    return (columns @ left.T).view(*lead, out_width, out_height).transpose(-1, -2)
