r"""Faster CPU algorithms for two AlexNet convolutions, with pyiqa's weights and results.

SPIPS runs pyiqa's LPIPS backbones channels-last on CPU (oneDNN's convolutions and pooling are
faster so, ``deep_features.py``). Measured on the 2-core development machine (torch 2.14.1,
batch 8 of 256 px, forward + backward to the input), two of AlexNet's five convolutions do better
otherwise:

- the first (3 -> 64 channels, 11x11, stride 4) as a loss: its input gradient costs oneDNN 3x its
  forward. :class:`SpaceToDepthConv2d` computes the same convolution as a stride-1 3x3
  convolution of the 4x4 space-to-depth rearrangement of the input (48 channels; the kernel is
  zero-padded to 12x12 and rearranged alike): 31 ms instead of 44 ms forward + backward, but 13 ms
  instead of 11 ms forward alone, so it is used only where the input requires a gradient;
- the second (64 -> 192, 5x5) runs faster on planar (NCHW) tensors: 25 ms instead of 29 ms
  forward, 50 ms instead of 66 ms forward + backward (:class:`PlanarConv2d`; the output is
  returned channels-last, the layout the rest of the backbone runs in).

Both are ``nn.Conv2d`` subclasses holding the original parameters under the original names, so the
backbone's state dict, its weights and pyiqa's module structure do not change; off CPU they are
plain convolutions. Results equal ``F.conv2d`` to float32 rounding (``tests/test_speedups_equal.py``).
"""

import torch
import torch.nn.functional as F
from torch import nn


def _adopt(cls: type, conv: nn.Conv2d) -> nn.Conv2d:
    """A ``cls`` instance with ``conv``'s configuration and the very same parameters."""
    twin = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
               conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device='meta')
    twin.weight, twin.bias = conv.weight, conv.bias
    return twin


class SpaceToDepthConv2d(nn.Conv2d):
    r"""A strided convolution that, on CPU where its input requires a gradient, runs as a stride-1
    convolution of the space-to-depth input.

    With stride :math:`s`, padding :math:`p` and a :math:`k \times k` kernel, output pixel
    :math:`(i, j)` reads padded input rows :math:`s i .. s i + k - 1`: the kernel zero-padded to
    :math:`K = s \lceil k / s \rceil` covers :math:`K / s` whole :math:`s \times s` blocks, so on
    ``pixel_unshuffle(padded input, s)`` (channels ``c s^2 + dy s + dx``) it is a
    :math:`(K/s) \times (K/s)` stride-1 convolution with the kernel rearranged the same way.

    Shape:
        - Input: :math:`(N, C, H, W)`.
        - Output: :math:`(N, C_{out}, \lfloor (H + 2p - k) / s \rfloor + 1, \dots)`, as ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != 'cpu' or not (x.requires_grad and torch.is_grad_enabled()) or x.shape[0] == 0:
            return super().forward(x)  # (pixel_unshuffle returns an empty batch unchanged)
        stride, (pad_h, pad_w) = self.stride[0], self.padding
        kernel = self.kernel_size[0]
        blocks = -(-kernel // stride)
        out_h = (x.shape[-2] + 2 * pad_h - kernel) // stride + 1
        out_w = (x.shape[-1] + 2 * pad_w - kernel) // stride + 1
        # pad to whole blocks: rows past the last window's reach meet zero kernel entries or no output
        bottom = (out_h - 1 + blocks) * stride - x.shape[-2] - pad_h
        right = (out_w - 1 + blocks) * stride - x.shape[-1] - pad_w
        x = F.pad(x, (pad_w, right, pad_h, bottom))
        x = F.pixel_unshuffle(x, stride).contiguous(memory_format=torch.channels_last)
        return F.conv2d(x, self.blocked_weight(), self.bias)

    def blocked_weight(self) -> torch.Tensor:
        """The kernel zero-padded to whole blocks and rearranged like ``pixel_unshuffle``'s channels.

        Shape:
            Output: :math:`(C_{out}, C s^2, K / s, K / s)`.
        """
        stride, kernel = self.stride[0], self.kernel_size[0]
        blocks = -(-kernel // stride)
        size = blocks * stride
        weight = F.pad(self.weight, (0, size - kernel, 0, size - kernel))
        out_channels, in_channels = weight.shape[:2]
        weight = weight.view(out_channels, in_channels, blocks, stride, blocks, stride)
        return weight.permute(0, 1, 3, 5, 2, 4).reshape(out_channels, in_channels * stride**2, blocks, blocks)


class PlanarConv2d(nn.Conv2d):
    """A convolution that runs on planar (NCHW) tensors on CPU and returns channels-last ones.

    Shape: as ``nn.Conv2d``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != 'cpu':
            return super().forward(x)
        return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)


#: Per backbone, (slice, index in the slice) of the convolutions to replace, and by what.
FASTER_CONVOLUTIONS = {'alex': {('slice1', '0'): SpaceToDepthConv2d, ('slice2', '3'): PlanarConv2d}}


def use_faster_convolutions(backbone: nn.Module, net: str) -> nn.Module:
    """Swap ``backbone``'s convolutions listed in :data:`FASTER_CONVOLUTIONS` for their faster
    twins (same parameters, same names); returns ``backbone``."""
    for (slice_name, index), cls in FASTER_CONVOLUTIONS.get(net, {}).items():
        layers = getattr(backbone, slice_name)
        conv = getattr(layers, index)
        if type(conv) is not nn.Conv2d:
            raise TypeError(f'{net} {slice_name}.{index} is {type(conv).__name__}, expected Conv2d')
        setattr(layers, index, _adopt(cls, conv))
    return backbone
