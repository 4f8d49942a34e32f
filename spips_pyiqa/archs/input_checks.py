"""Validation of SPIPS inputs: one clear error per problem, never a silently wrong score.

Accepted: two floating-point tensors ``(N, C, H, W)`` with the same ``N, H, W`` on the same device,
``C`` 1 (grey, repeated to RGB, also when the other image is RGB) or 3, ``H, W >= MIN_SIZE`` and
finite values. Any memory layout (non-contiguous, channels-last) gives the same score.
float16/bfloat16/float64 are computed in float32 (SSIM's constants and PSNR's floor underflow in
half precision; the backbone is float32), and the score is float32.

Values belong in [0, 1]. pyiqa's ``create_metric`` asserts that range itself (an ``AssertionError``
from pyiqa, also for NaN/Inf, 3-D and 4-channel input), except with ``as_loss=True`` or
``check_input_range=False``. The SPIPS module cannot refuse out-of-range values, since it cannot tell
a loss (where pyiqa's own gradient check feeds ``randn`` images) from a measurement, so it computes
the score and warns once per process with :class:`InputRangeWarning`; SPIPS stays finite and
differentiable for any finite input.

Under ``torch.compile``. Everything but the values is metadata (shape, dtype, device), checked the
same way while tracing (dynamo guards on it). The value check reads the data, and what dynamo does
with each way of doing that was measured (torch 2.14, ``torch._dynamo.explain``): the eager check
(``aminmax`` then ``.tolist()``) breaks the graph ("``Tensor.tolist()`` with non-integer tensor"),
so does ``torch._check(bool(...))`` or ``.item()`` ("Unsupported ``Tensor.item()`` call with
``capture_scalar_outputs=False``"); ``torch._assert_async(torch.isfinite(x).all(), message)`` is
traced into the graph and raises a ``RuntimeError`` with the message when the compiled code runs on
non-finite input (CPU, backends ``aot_eager`` and ``inductor``; on CUDA it is a device-side assert).
So while compiling, NaN/Inf are refused by that in-graph assert (``RuntimeError``, same text; no host
read), and the [0, 1] range warning, which needs the values on the host to decide, is not given.
Eagerly, the check is one host read of each image's minimum and maximum per call. Image height and
width are specialised while tracing (:func:`_static_image_size`): each image size gets a graph of its
own, while the batch size may stay dynamic.
"""

import math
import warnings

import torch

#: Smallest height/width: AlexNet's five feature taps need 63 px; BAPPS patches are 64 px.
MIN_SIZE = 64
#: Slack of the [0, 1] range check, as in pyiqa's ``InferenceModel``.
RANGE_TOLERANCE = 1e-6

_INTEGER_FIXES = {
    torch.bool: '{name}.float()',
    torch.uint8: '{name}.float() / 255',
    torch.uint16: '{name}.float() / 65535',
    torch.int16: '{name}.float() / 65535 for 16-bit data',
}


class InputRangeWarning(UserWarning):
    """An image with values outside [0, 1] reached the SPIPS module (the score is still computed)."""


def _check_structure(name: str, image) -> None:
    """Type, rank, dtype, channels and size of one image: everything that needs no data."""
    if not torch.is_tensor(image):
        hint = f' (read files with spips_pyiqa.load_image({name}))' if isinstance(image, str) else ''
        raise TypeError(f'{name} must be a torch.Tensor (N, C, H, W), got {type(image).__name__}{hint}')
    if image.dim() != 4:
        fix = f': add a batch dimension with {name}.unsqueeze(0)' if image.dim() == 3 else ''
        raise ValueError(f'{name} must be 4-D (N, C, H, W), got shape {tuple(image.shape)}{fix}')
    if not image.is_floating_point():
        fix = _INTEGER_FIXES.get(image.dtype, f'{name}.float() scaled to [0, 1]').format(name=name)
        raise TypeError(f'{name} has dtype {image.dtype}; SPIPS needs floats in [0, 1]: use {fix}')
    channels, height, width = image.shape[1:]
    if channels not in (1, 3):
        hints = {
            2: ' (grey + alpha? keep the grey channel)',
            4: f' (RGBA? use {name}[:, :3] if it is opaque, else composite it onto a background)',
        }
        raise ValueError(f'{name} must have 1 or 3 channels, got {channels}{hints.get(channels, "")}')
    if min(height, width) < MIN_SIZE:
        raise ValueError(
            f'{name} is {height}x{width}; SPIPS needs at least {MIN_SIZE}x{MIN_SIZE} pixels '
            '(upsample or pad smaller images)'
        )


def _check_values(name: str, image: torch.Tensor) -> None:
    """Finite values (else ValueError) in [0, 1] (else :class:`InputRangeWarning`); one sync.
    While ``torch.compile`` traces: an in-graph assert of finite values (no sync, no warning)."""
    if image.numel() == 0 or image.is_meta:
        return
    if torch.compiler.is_compiling():
        torch._assert_async(torch.isfinite(image).all(), f'{name} contains NaN or Inf values')
        return
    # One pass: NaN propagates to both extremes and an infinity is one, so finite extremes mean
    # finite values.
    low, high = (float(v) for v in torch.stack(torch.aminmax(image.detach())).tolist())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f'{name} contains NaN or Inf values')
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        warnings.warn(  # constant text: Python shows it once per process, not at every loss step
            f'{name} has values outside [0, 1]; SPIPS is defined on images in [0, 1] (8-bit data: '
            'divide by 255; [-1, 1] data: (x + 1) / 2). The score is computed anyway, as pyiqa '
            'does for losses, but is not comparable with scores of images in range.',
            InputRangeWarning,
        )


def _as_rgb_float32(image: torch.Tensor) -> torch.Tensor:
    image = image.float()
    return image.expand(-1, 3, -1, -1) if image.shape[1] == 1 else image


def check_image_pair(target, ref) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Validate a target/reference pair and return both as float32 RGB.

    Structure (type, rank, dtype, channels, size) is checked first, then the pair (batch size,
    height and width, device), then the values (finite; a warning outside [0, 1]).

    Shape:
        - target, ref: :math:`(N, C, H, W)`, ``C`` in {1, 3}.
        - Output: two :math:`(N, 3, H, W)` float32 tensors.
    """
    _check_structure('target', target)
    _check_structure('ref', ref)
    if target.shape[0] != ref.shape[0]:
        raise ValueError(
            f'target has batch size {target.shape[0]} but ref has {ref.shape[0]}: give one ref per '
            f'target (ref.expand({target.shape[0]}, -1, -1, -1) reuses a single reference)'
        )
    if target.shape[-2:] != ref.shape[-2:]:
        raise ValueError(
            f'target is {target.shape[-2]}x{target.shape[-1]} but ref is '
            f'{ref.shape[-2]}x{ref.shape[-1]} (height x width): resize or crop one of them'
        )
    if target.device != ref.device:
        raise ValueError(
            f'target is on {target.device} but ref is on {ref.device}: move both to one device, '
            f'e.g. ref.to(target.device)'
        )
    if torch.compiler.is_compiling():
        _static_image_size(target)
        _static_image_size(ref)
    _check_values('target', target)
    _check_values('ref', ref)
    return _as_rgb_float32(target), _as_rgb_float32(ref)


def _static_image_size(image: torch.Tensor) -> None:
    """Under ``torch.compile``, specialise the graph on the image height and width (a new size
    compiles a graph of its own; the batch size may stay dynamic). After a second size dynamo would
    make them symbolic (automatic dynamic shapes), and inductor cannot lower the size arithmetic of
    the tiled filter's whole blocks or the space-to-depth convolution on them (``InductorError:
    cannot determine truth value of Relational``)."""
    torch._dynamo.mark_static(image, 2)
    torch._dynamo.mark_static(image, 3)
