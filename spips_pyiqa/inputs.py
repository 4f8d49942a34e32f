"""Validation of SPIPS inputs: one clear error per problem, never a silently wrong score.

Accepted: two floating-point tensors of the same shape ``(N, C, H, W)`` on the same device, with
``C`` 1 (grey, repeated to RGB) or 3, ``H, W >= MIN_SIZE`` and finite values. float16/bfloat16 are
computed in float32 (SSIM's constants and PSNR's floor underflow in half precision). Values are
expected in [0, 1]; pyiqa's ``create_metric`` checks that range (except with ``as_loss=True``, where
SPIPS stays finite for any finite input).
"""

from typing import Tuple

import torch

#: Smallest height/width: AlexNet's five feature taps need 63 px; BAPPS patches are 64 px.
MIN_SIZE = 64


def _check_image(name: str, image) -> torch.Tensor:
    if not torch.is_tensor(image):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(image).__name__}')
    if image.dim() == 3:
        raise ValueError(
            f'{name} must be 4-D (N, C, H, W), got shape {tuple(image.shape)}: '
            f'add a batch dimension with {name}.unsqueeze(0)'
        )
    if image.dim() != 4:
        raise ValueError(f'{name} must be 4-D (N, C, H, W), got shape {tuple(image.shape)}')
    if not image.is_floating_point():
        raise TypeError(
            f'{name} has dtype {image.dtype}; SPIPS needs floats in [0, 1] '
            f'(for 8-bit images use {name}.float() / 255)'
        )
    channels, height, width = image.shape[1:]
    if channels not in (1, 3):
        hint = ' (RGBA? drop or composite the alpha channel first)' if channels == 4 else ''
        raise ValueError(f'{name} must have 1 or 3 channels, got {channels}{hint}')
    if min(height, width) < MIN_SIZE:
        raise ValueError(
            f'{name} is {height}x{width}; SPIPS needs at least {MIN_SIZE}x{MIN_SIZE} pixels '
            '(upsample or pad smaller images)'
        )
    if not torch.isfinite(image).all():
        raise ValueError(f'{name} contains NaN or Inf values')
    image = image.float()
    return image.expand(-1, 3, -1, -1) if channels == 1 else image


def check_image_pair(target, ref) -> Tuple[torch.Tensor, torch.Tensor]:
    r"""Validate a target/reference pair and return both as float32 RGB.

    Shape:
        - target, ref: :math:`(N, C, H, W)`, ``C`` in {1, 3}.
        - Output: two :math:`(N, 3, H, W)` float32 tensors.
    """
    target, ref = _check_image('target', target), _check_image('ref', ref)
    if target.shape != ref.shape:
        raise ValueError(
            f'target and ref must have the same shape, got {tuple(target.shape)} and '
            f'{tuple(ref.shape)} (resize or crop one of them; batch sizes must match too)'
        )
    if target.device != ref.device:
        raise ValueError(
            f'target is on {target.device} but ref is on {ref.device}: move both to one device'
        )
    return target, ref
