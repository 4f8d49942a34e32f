"""Caches of the constant tensors of the traditional maps (filter and resize matrices, luma weights).

These tensors depend only on sizes, dtypes and devices (filter matrices also on one kernel tensor,
by identity), never on the images, so eagerly each is built once and reused. Under
``torch.compile`` no cache is consulted: dynamo ignores ``functools.lru_cache`` (with a warning
about possible silent incorrectness) and a key holding a tensor's version counter is
data-dependent there, which broke the graph at every lookup. The compiled graph builds these
tensors itself instead: a few small ``arange``/``index_put``/``interpolate`` ops per size.
No key ever holds tensor values, and no lookup reads from the device. Entries are built outside
``torch.inference_mode`` even when the first call runs in it: an inference tensor in the cache would
break every later call that autograd records ("Inference tensors cannot be saved for backward").
"""

from collections import OrderedDict
from functools import lru_cache, wraps
from typing import Callable, TypeVar

import torch

Built = TypeVar('Built')

#: Most (kind, kernel, size, device, dtype) entries kept by :func:`cached_for_kernel` (a few per
#: image size and MS-SSIM scale).
KERNEL_CACHE_SIZE = 64

_KERNEL_CACHE: 'OrderedDict[tuple, tuple]' = OrderedDict()


def cached_constant(maxsize: int = 64) -> Callable[[Callable[..., Built]], Callable[..., Built]]:
    """``functools.lru_cache(maxsize)`` for builders of constant tensors whose arguments are sizes,
    devices and dtypes; bypassed (the builder called) while ``torch.compile`` traces."""

    def decorate(build: Callable[..., Built]) -> Callable[..., Built]:
        @lru_cache(maxsize=maxsize)
        def cached(*key) -> Built:
            with torch.inference_mode(False):  # a first call under inference_mode: a plain tensor
                return build(*key)

        @wraps(build)
        def lookup(*key) -> Built:
            return build(*key) if torch.compiler.is_compiling() else cached(*key)

        lookup.cache_clear = cached.cache_clear
        return lookup

    return decorate


def cached_for_kernel(kind: str, kernel: torch.Tensor, size: int, like: torch.Tensor, build: Callable[[], Built]) -> Built:
    """``build()`` once per (kind, kernel, size, device and dtype of ``like``); an LRU of
    :data:`KERNEL_CACHE_SIZE` entries; bypassed while ``torch.compile`` traces.

    The key holds the kernel's identity and version counter (Python ints, no device read); the
    entry keeps a reference to the kernel, so its ``id`` cannot be reused by another tensor while
    the entry lives, and in-place changes to it (a new version) miss the cache.
    """
    if torch.compiler.is_compiling():
        return build()
    key = (kind, id(kernel), kernel._version, size, like.device, like.dtype)
    entry = _KERNEL_CACHE.get(key)
    if entry is not None and entry[0] is kernel:
        _KERNEL_CACHE.move_to_end(key)
        return entry[1]
    with torch.inference_mode(False):  # kept for later calls, which autograd may record
        value = build()
    _KERNEL_CACHE[key] = (kernel, value)
    while len(_KERNEL_CACHE) > KERNEL_CACHE_SIZE:
        _KERNEL_CACHE.popitem(last=False)
    return value
