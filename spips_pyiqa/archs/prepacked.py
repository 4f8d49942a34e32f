r"""Grouped 1x1 convolutions with oneDNN's prepacked weights (the Winograd products' speed on CPU).

``F.conv2d`` hands oneDNN a plain weight, which oneDNN reorders into its own blocked layout at every
call. For the weights of the Winograd products (``winograd.py``: 25/9 of a layer's weight, 6-10 MB
for AlexNet's conv3-5) that reorder is a large part of the call once the weight has left the
cache: measured on the 2-core development machine (conv4's products, 200 tiles, cache flushed
between calls), 2.9 ms plain against 2.1 ms prepacked. Here the reordered copy is made once per
weight and input size and kept: what inductor's ``freezing`` does for a frozen model's convolutions, with the same
oneDNN calls (``torch._C._nn.mkldnn_reorder_conv2d_weight`` and
``torch.ops.mkldnn._convolution_pointwise``). The values are the very ones ``F.conv2d`` gives.

The copies are kept per weight tensor (its address, checked against a weak reference to it, its
version counter and its layout) and dropped with it: a weight edited in place, or another
weight, is packed afresh, never served a stale copy. Where oneDNN's calls are missing (another
build of torch) or fail, and off CPU or float32, the plain ``F.conv2d`` runs.

Shape conventions: inputs :math:`(N, C, H, W)` channels-last, weights :math:`(O, C / g, 1, 1)`.
"""

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Dict, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F

#: Packed copies kept per weight and name (the last input sizes used). oneDNN picks its
#: implementation, and the packed layout it expects, by the input's size, and a copy packed for
#: another size can cost 30x the plain call (measured: 50 tiles against a copy packed for 64 or 256),
#: so each copy serves the one input size it was packed for; two cover a batch done in two unequal
#: turns (``winograd.py``).
PACKS_PER_NAME = 2
#: Whether this build of torch has the oneDNN calls used here.
ONEDNN_CALLS = (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, '_convolution_pointwise')
                and hasattr(torch._C._nn, 'mkldnn_reorder_conv2d_weight'))


class _Entry(NamedTuple):
    source: weakref.ref  #: the weight tensor the copies were made from
    version: int  #: its version counter then
    layout: tuple  #: its shape, strides, dtype and device then
    packed: 'OrderedDict[Tuple[str, tuple], Optional[torch.Tensor]]'  #: by (name, input size); None: refused
    forget: weakref.finalize  #: drops the entry with its weight


_ENTRIES: Dict[int, _Entry] = {}
_LOCK = threading.Lock()


def _layout(tensor: torch.Tensor) -> tuple:
    return tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype, tensor.device


def _entry(owner: torch.Tensor) -> _Entry:
    """The live entry of ``owner`` (a new one if it has none, or if it changed since)."""
    key = owner.data_ptr()
    entry = _ENTRIES.get(key)
    if entry is None or entry.source() is None or entry.version != owner._version or entry.layout != _layout(owner):
        if entry is not None:
            entry.forget.detach()  # its copies go now, not when the weight does
        packed: OrderedDict = OrderedDict()
        entry = _Entry(weakref.ref(owner), owner._version, _layout(owner), packed,
                       weakref.finalize(owner, _forget, key, packed))
        _ENTRIES[key] = entry
    return entry


def _forget(key: int, packed: OrderedDict) -> None:
    """Drop the entry at ``key`` if it is still the one holding ``packed``."""
    entry = _ENTRIES.get(key)
    if entry is not None and entry.packed is packed:
        del _ENTRIES[key]


def _pack(weight: torch.Tensor, groups: int, size: tuple) -> Optional[torch.Tensor]:
    """oneDNN's packed copy of a 1x1 ``weight`` for ``groups`` groups and inputs of ``size``, or
    ``None`` if oneDNN refuses."""
    try:
        with torch.inference_mode(False), torch.no_grad():
            return torch._C._nn.mkldnn_reorder_conv2d_weight(
                weight.detach().to_mkldnn(), [0, 0], [1, 1], [1, 1], groups, list(size))
    except RuntimeError:
        return None


def _packed(
    owner: torch.Tensor, name: str, weight: Callable[[], torch.Tensor], groups: int, size: tuple
) -> Optional[torch.Tensor]:
    """The packed copy of ``weight()`` for inputs of ``size``, kept for ``owner`` under ``name``."""
    with _LOCK:
        packed = _entry(owner).packed
        key = (name, size)
        if key in packed:
            packed.move_to_end(key)
        else:
            same_name = [k for k in packed if k[0] == name]
            if len(same_name) >= PACKS_PER_NAME:
                del packed[same_name[0]]
            packed[key] = _pack(weight(), groups, size)
        return packed[key]


def grouped_pointwise_conv(
    x: torch.Tensor, owner: torch.Tensor, name: str, weight: Callable[[], torch.Tensor], groups: int
) -> torch.Tensor:
    r"""``F.conv2d(x, weight(), groups=groups)`` for a frozen 1x1 weight, through oneDNN's copy of
    ``weight()`` packed for ``x``'s size, kept for ``owner`` (the tensor ``weight()`` is derived
    from) under ``name``.

    ``weight()`` is called only to pack it, or on the plain path. Not differentiable: the caller
    brings its own backward (the Winograd operator's input gradient is another such product).

    Shape:
        - x: :math:`(N, C, H, W)`, channels-last.
        - weight(): :math:`(O, C / \text{groups}, 1, 1)`.
        - Output: :math:`(N, O, H, W)`, channels-last.
    """
    usable = ONEDNN_CALLS and x.device.type == 'cpu' and x.dtype == owner.dtype == torch.float32
    copy = _packed(owner, name, weight, groups, tuple(x.shape)) if usable and not owner.is_inference() else None
    if copy is None:
        return F.conv2d(x, weight(), groups=groups)
    return torch.ops.mkldnn._convolution_pointwise(x, copy, None, [0, 0], [1, 1], [1, 1], groups, 'none', [], '')
