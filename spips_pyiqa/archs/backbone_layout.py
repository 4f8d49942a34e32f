r"""Faster CPU algorithms for AlexNet's convolutions, with pyiqa's weights and results.

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
  returned channels-last, the layout the rest of the backbone runs in);
- the last three (3x3, stride 1) by Winograd's F(3x3, 3x3) (:class:`WinogradConv2d`,
  ``winograd.py``): under a third of the multiplications, as 25 products that BLAS runs near peak;
  forward 6.9 + 8.7 + 5.7 ms instead of 10.7 + 13.7 + 9.1 ms at 256 px (15 px maps), and
  0.72-0.77x at 64 px (3 px maps); the input gradient likewise. The frozen weights are transformed
  once, when they change, not per call.

All three are ``nn.Conv2d`` subclasses holding the original parameters under the original names, so the
backbone's state dict, its weights and pyiqa's module structure do not change; off CPU they are
plain convolutions. Results equal ``F.conv2d`` to float32 rounding (``tests/test_speedups_equal.py``).

Which of them pays depends on the CPU: on a 2-core AMD EPYC of family 26 (Zen 5, full-width
AVX-512), oneDNN's direct channels-last convolutions beat planar conv2 (16.6 ms instead of 24.3 ms,
forward + backward, batch 8 of 256 px); there MKL's batched products run at half oneDNN's rate, and
Winograd paid only once its products became one grouped oneDNN convolution with packed weights
(conv3-5 forward + backward 0.64-0.73x the direct convolutions' time on the probe's batch, against
1.5x as ``bmm``). So each twin is put in only where it measured faster on this machine
(:func:`twin_pays`, once per process and layer, when the first backbone is built), unless
:data:`CPU_CONVOLUTIONS_ENV` says otherwise.
"""

import os
import time
from typing import Callable, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from spips_pyiqa.archs.winograd import TILES, transform_kernel, winograd_conv2d, winograd_pays


def _adopt(cls: type, conv: nn.Conv2d) -> nn.Conv2d:
    """A ``cls`` instance with ``conv``'s configuration and the very same parameters."""
    twin = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
               conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device='meta')
    twin.weight, twin.bias = conv.weight, conv.bias
    if isinstance(twin, WinogradConv2d):
        twin.refresh_transformed_weight()
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


class WinogradConv2d(nn.Conv2d):
    r"""A stride-1, "same" :math:`r \times r` convolution (``r`` a key of
    :data:`~spips_pyiqa.archs.winograd.TILES`) that, on CPU with frozen weights, runs by Winograd's
    minimal filtering (:func:`~spips_pyiqa.archs.winograd.winograd_conv2d`) where that pays
    (:func:`~spips_pyiqa.archs.winograd.winograd_pays`: not on the 7x7 maps of 128 px images).

    The transformed weights (:math:`a^2 / r^2 = 25 / 9` times the weight's size) are a non-persistent
    buffer, so they follow ``.to()`` and stay out of the state dict; oneDNN's packed copies of them
    (``prepacked.py``, one per input size in use and direction) live as long as that buffer. They are rebuilt when the weight
    changes: on ``load_state_dict``, and, in eager calls, whenever the weight is another tensor or
    has a new version (in-place edits; metadata only, no device read). A compiled graph cannot
    check versions: after editing a frozen backbone weight in place, run one eager call or
    :meth:`refresh_transformed_weight` before the next compiled one.
    With trainable weights (``tune=True``) it is a plain convolution.

    Shape: as ``nn.Conv2d``; on CPU the output is channels-last.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.stride != (1, 1) or self.padding != (self.kernel_size[0] // 2,) * 2 or self.dilation != (1, 1) \
                or self.groups != 1 or self.kernel_size[0] != self.kernel_size[1] or self.kernel_size[0] not in TILES \
                or self.padding_mode != 'zeros':
            raise ValueError(f'WinogradConv2d computes stride-1 "same" {sorted(TILES)}-square convolutions, not {self}')
        self.register_buffer('transformed_weight', None, persistent=False)
        self._transformed_from: Tuple = ()
        self.register_load_state_dict_post_hook(lambda module, _: module.refresh_transformed_weight())

    def _source(self) -> Tuple:
        """What the transformed weight was computed from: the weight's identity, version, device and dtype."""
        weight = self.weight
        return (weight.data_ptr(), weight._version, weight.device, weight.dtype)

    def refresh_transformed_weight(self) -> None:
        """Recompute the transformed weight from the current weight (a plain tensor even when this
        runs under ``torch.inference_mode``, so later calls with autograd may save it)."""
        if self.weight.device.type == 'meta':
            return
        with torch.inference_mode(False):
            self.transformed_weight = transform_kernel(self.weight)
        self._transformed_from = self._source()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frozen = not (self.weight.requires_grad or (self.bias is not None and self.bias.requires_grad))
        if x.device.type != 'cpu' or not frozen or not winograd_pays(*x.shape[-2:], self.kernel_size[0]):
            return super().forward(x)
        if not torch.compiler.is_compiling() and self._transformed_from != self._source():
            self.refresh_transformed_weight()
        return winograd_conv2d(x, self.transformed_weight, self.bias, self.kernel_size[0])


#: Per backbone, (slice, index in the slice) of the convolutions to replace, and by what.
FASTER_CONVOLUTIONS = {
    'alex': {
        ('slice1', '0'): SpaceToDepthConv2d,
        ('slice2', '3'): PlanarConv2d,
        ('slice3', '6'): WinogradConv2d,
        ('slice4', '8'): WinogradConv2d,
        ('slice5', '10'): WinogradConv2d,
    }
}
#: Environment variable choosing the CPU convolutions: ``measured`` (default: each twin of
#: :data:`FASTER_CONVOLUTIONS` where :func:`twin_pays`), ``faster`` (every twin) or ``plain``
#: (pyiqa's convolutions, none replaced).
CPU_CONVOLUTIONS_ENV = 'SPIPS_PYIQA_CPU_CONVOLUTIONS'
CPU_CONVOLUTION_MODES = ('measured', 'faster', 'plain')
#: A twin is put in where its forward + backward takes at most this share of the plain convolution's
#: (a margin, so that noise on a machine where both cost the same does not flip the choice).
TWIN_MAX_TIME_SHARE = 0.9
#: The measurement's input: a batch of this many images of this side (the maps each layer sees at
#: 256 px), and how many timed passes of each convolution (:func:`twin_pays`).
PROBE_BATCH, PROBE_SIZE, PROBE_REPEATS = 4, 256, 5
_MEASURED: Dict[Tuple, bool] = {}


def cpu_convolution_mode() -> str:
    """The mode :data:`CPU_CONVOLUTIONS_ENV` asks for (default ``measured``); a clear error otherwise."""
    mode = os.environ.get(CPU_CONVOLUTIONS_ENV, 'measured')
    if mode not in CPU_CONVOLUTION_MODES:
        raise ValueError(f'{CPU_CONVOLUTIONS_ENV}={mode!r}: expected one of {", ".join(CPU_CONVOLUTION_MODES)}')
    return mode


def _step_time(conv: nn.Module, x: torch.Tensor) -> float:
    """Seconds of one forward + backward (to ``x``) pass of ``conv``."""
    image = x.detach().requires_grad_(True)
    start = time.perf_counter()
    torch.autograd.grad(conv(image).sum(), image)  # not .backward(): trainable weights keep no .grad
    return time.perf_counter() - start


def twin_pays(key: Tuple, conv: nn.Conv2d, twin: nn.Conv2d, probe: Callable[[], torch.Tensor]) -> bool:
    """Whether ``twin`` (a faster-algorithm copy of ``conv``) takes at most :data:`TWIN_MAX_TIME_SHARE`
    of ``conv``'s time on its input ``probe()``, forward + backward on this CPU (the fastest of
    :data:`PROBE_REPEATS` passes each, alternating, after a warm-up pass); measured once per process
    and ``key`` (and thread count): ``probe`` is called only then."""
    key = (*key, torch.get_num_threads())
    if key not in _MEASURED:
        x = probe()
        times = ([], [])
        with torch.inference_mode(False), torch.enable_grad():
            for _ in range(PROBE_REPEATS + 1):
                for layer, spent in zip((conv, twin), times):
                    spent.append(_step_time(layer, x))
        plain, fast = (min(spent[1:]) for spent in times)
        _MEASURED[key] = fast <= TWIN_MAX_TIME_SHARE * plain
    return _MEASURED[key]


def _layer_inputs(backbone: nn.Module, layers: Dict[Tuple[str, str], nn.Module]) -> Dict[Tuple[str, str], torch.Tensor]:
    """Each of ``layers``' input (channels-last, as the backbone runs) when ``backbone`` sees the
    probe batch (:data:`PROBE_BATCH` fixed random images of :data:`PROBE_SIZE` px)."""
    inputs, hooks = {}, []
    for name, layer in layers.items():
        hooks.append(layer.register_forward_pre_hook(lambda _, args, name=name: inputs.__setitem__(name, args[0].detach())))
    image = torch.rand(PROBE_BATCH, 3, PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode(False), torch.no_grad():
            backbone(image.contiguous(memory_format=torch.channels_last))
    finally:
        for hook in hooks:
            hook.remove()
    return inputs


def use_faster_convolutions(backbone: nn.Module, net: str) -> nn.Module:
    """Swap ``backbone``'s convolutions listed in :data:`FASTER_CONVOLUTIONS` for their faster
    twins (same parameters, same names), those that pay on this CPU or as
    :data:`CPU_CONVOLUTIONS_ENV` says; returns ``backbone``."""
    mode = cpu_convolution_mode()
    listed = FASTER_CONVOLUTIONS.get(net, {})
    if mode == 'plain' or not listed:
        return backbone
    layers = {}
    for (slice_name, index), cls in listed.items():
        conv = getattr(getattr(backbone, slice_name), index)
        if type(conv) is not nn.Conv2d:
            raise TypeError(f'{net} {slice_name}.{index} is {type(conv).__name__}, expected Conv2d')
        layers[slice_name, index] = conv
    inputs = {}  # the probe batch's layer inputs, computed at the first choice not yet measured

    def probe(layer: Tuple[str, str]) -> torch.Tensor:
        if not inputs:
            inputs.update(_layer_inputs(backbone, layers))
        return inputs[layer]

    for layer, cls in listed.items():
        conv = layers[layer]
        twin = _adopt(cls, conv)
        if mode == 'faster' or twin_pays((net, *layer), conv, twin, lambda layer=layer: probe(layer)):
            setattr(getattr(backbone, layer[0]), layer[1], twin)
    return backbone


def convolutions_in_use(backbone: nn.Module, net: str) -> Dict[str, str]:
    """Class of each convolution of :data:`FASTER_CONVOLUTIONS` in ``backbone`` (``Conv2d``: plain),
    by ``slice.index``: what :func:`use_faster_convolutions` chose."""
    return {f'{slice_name}.{index}': type(getattr(getattr(backbone, slice_name), index)).__name__
            for slice_name, index in FASTER_CONVOLUTIONS.get(net, {})}
