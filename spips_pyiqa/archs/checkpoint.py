"""SPIPS checkpoints: strict loading with clear errors, and saving with provenance.

Two layouts load, both ``{'params': state_dict, ...}`` (pyiqa's ``save_network`` layout):

- a *heads* checkpoint: exactly the state dict of :class:`~spips_pyiqa.archs.quality_heads.QualityHeads` (all
  that SPIPS learns with a frozen backbone) plus ``'meta'`` (backbone, groups, version,
  provenance), as shipped in ``spips_pyiqa/heads/``;
- a *full* checkpoint as written by pyiqa's training loop: every key of the SPIPS network.

Anything else is refused with a :class:`CheckpointError` naming the file and the problem: unreadable
(truncated, corrupted, not a torch file, a pickle of arbitrary objects), a bare state dict (LPIPS,
torchvision), missing/unexpected keys, wrong shapes (with the backbone and groups the heads were
made for, when they fit a known variant), non-finite values. pyiqa loads LPIPS non-strictly, so a
wrong file there goes unnoticed; here it cannot. Every check runs before any value is copied, so a
refused file leaves the network as it was. Routes that bypass :func:`load_checkpoint` (pyiqa's
``load_weights``, its training ``load_network``, a direct ``load_state_dict``) still meet
:func:`refuse_non_finite_state`, which ``SPIPS`` registers as a ``load_state_dict`` pre-hook.
"""

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spips_pyiqa.archs.deep_features import BACKBONES
from spips_pyiqa.archs.groups import group_channels

HEADS_FORMAT = 'spips-heads'


class CheckpointError(ValueError):
    """A SPIPS checkpoint that cannot be read or does not fit the network."""


def read_checkpoint(path) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``) or raise :class:`CheckpointError`."""
    if not str(path).strip():  # Path('') would be the current folder
        raise CheckpointError('the SPIPS checkpoint path is empty: give a file, or None for the default heads')
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f'SPIPS checkpoint not found: {path}')
    if not path.is_file():
        raise CheckpointError(f'SPIPS checkpoint {path} is not a file')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError:  # torch's message suggests weights_only=False: never here
        raise CheckpointError(
            f'cannot read SPIPS checkpoint {path}: not a torch file, or one that pickles objects '
            'other than tensors and plain containers (refused: unpickling those can run code)'
        ) from None
    except Exception as error:  # noqa: BLE001  (truncated zip, garbage bytes, ...: all unreadable)
        first_line = (str(error).splitlines() or [''])[0][:200]
        raise CheckpointError(
            f'cannot read SPIPS checkpoint {path}: truncated, corrupted or not a torch file '
            f'({type(error).__name__}: {first_line})'
        ) from None
    layout = "{'params': state_dict, 'meta': {...}} as written by spips_pyiqa.archs.checkpoint.save_heads or pyiqa training"
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f'{path} is not a SPIPS checkpoint (it holds a {type(checkpoint).__name__}): SPIPS reads {layout}')
    if 'params' in checkpoint and not isinstance(checkpoint['params'], Mapping):
        raise CheckpointError(
            f"{path} is not a SPIPS checkpoint: its 'params' is a {type(checkpoint['params']).__name__}, "
            f'not a state dict: SPIPS reads {layout}'
        )
    if 'params' not in checkpoint:
        raise CheckpointError(
            f"{path} is not a SPIPS checkpoint: no 'params' state dict (keys: {_describe(checkpoint)}; "
            f'a bare LPIPS or torchvision state dict?): SPIPS reads {layout}'
        )
    if not isinstance(checkpoint.get('meta', {}), Mapping):
        raise CheckpointError(f"{path}: 'meta' must be a dict, got {type(checkpoint['meta']).__name__}")
    return checkpoint


def _describe(keys) -> str:
    keys = sorted(map(str, keys))
    return ', '.join(keys[:4]) + (f' (+{len(keys) - 4} more)' if len(keys) > 4 else '') or 'none'


def _heads_layout(state: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{group: channels of each map}`` of the heads in ``state`` (heads or full layout)."""
    layout: dict[str, dict[int, int]] = {}
    for key, value in state.items():
        match = re.fullmatch(r'(?:quality\.)?heads\.(\w+)\.convs\.(\d+)\.weight', key)
        if match and torch.is_tensor(value) and value.dim() == 4:
            layout.setdefault(match[1], {})[int(match[2])] = value.shape[1]
    return {group: tuple(c[i] for i in sorted(c)) for group, c in layout.items()}


def _made_for(state: Mapping[str, Any]) -> str:
    """`` (its heads fit net=..., groups=...)`` when they fit a known SPIPS variant, else ``''``."""
    layout = _heads_layout(state)
    for net in BACKBONES:
        try:
            if group_channels(net, list(layout)) == layout:
                return f' (its heads fit net={net!r}, groups={list(group_channels(net, list(layout)))})'
        except ValueError:  # not a valid group selection
            return ''
    return ''


def _check_state(path: Path, state: Mapping[str, Any], target: nn.Module, expected_meta) -> None:
    """Raise :class:`CheckpointError` unless ``state`` loads into ``target`` exactly and is finite."""
    wanted = target.state_dict()
    problem = f'{path} does not fit SPIPS({expected_meta})'
    if set(state) != set(wanted):
        missing, unexpected = set(wanted) - set(state), set(state) - set(wanted)
        raise CheckpointError(
            f'{problem}: missing keys: {_describe(missing)}; unexpected keys: '
            f'{_describe(unexpected)}{_made_for(state)}'
        )
    not_tensors = [key for key, value in state.items() if not torch.is_tensor(value)]
    if not_tensors:
        raise CheckpointError(f'{problem}: not tensors: {_describe(not_tensors)}')
    shapes = [
        f'{key} is {tuple(value.shape)}, needs {tuple(wanted[key].shape)}'
        for key, value in state.items()
        if value.shape != wanted[key].shape
    ]
    if shapes:
        raise CheckpointError(f'{problem}: {"; ".join(shapes[:3])}{_made_for(state)}')
    broken = non_finite_keys(state)
    if broken:
        raise CheckpointError(f'{path} has NaN or Inf values in {_describe(broken)}: the file is damaged')


def non_finite_keys(state: Mapping[str, Any], prefix: str = '') -> list[str]:
    """Keys under ``prefix`` whose floating-point tensor holds NaN, +Inf or -Inf."""
    return [
        key
        for key, value in state.items()
        if key.startswith(prefix) and torch.is_tensor(value) and value.is_floating_point()
        and not torch.isfinite(value).all()
    ]


def refuse_non_finite_state(module: nn.Module, state_dict: Mapping[str, Any], prefix: str, *_) -> None:
    """``load_state_dict`` pre-hook: refuse NaN/Inf values before any of them is copied.

    Covers the routes that bypass :func:`load_checkpoint`: pyiqa's ``InferenceModel.load_weights``,
    the ``pretrain_network`` path of pyiqa's training models (``BaseModel.load_network``) and a
    direct ``load_state_dict``. A -Inf fusion logit would even give a finite score (its group's
    lambda becomes 0), so non-finite values are refused, not only NaN.
    """
    broken = non_finite_keys(state_dict, prefix)
    if broken:
        raise CheckpointError(
            f'refusing to load a state dict with NaN or Inf values in {_describe(broken)} into '
            f'{type(module).__name__}: the weights are damaged'
        )


def load_checkpoint(model: nn.Module, path, expected_meta: dict[str, Any]) -> dict[str, Any]:
    """Load ``path`` into the SPIPS ``model`` strictly; return the checkpoint's ``meta``.

    ``expected_meta`` (e.g. ``{'net': 'alex', 'groups': [...]}``) is compared with the
    checkpoint's own ``meta`` where it has one, so a VGG file given to an AlexNet SPIPS is named as
    such rather than reported as a shape mismatch. Without ``meta``, a mismatch names the variant
    the heads fit, where they fit one. Nothing is copied unless every check passes.
    """
    checkpoint = read_checkpoint(path)
    path = Path(path)
    meta = dict(checkpoint.get('meta', {}))
    for field, wanted in expected_meta.items():
        if field in meta and meta[field] != wanted:
            raise CheckpointError(
                f'{path} was made for {field}={meta[field]!r} but this SPIPS has {field}={wanted!r}: '
                f'pass the matching variant, or a checkpoint made for {field}={wanted!r}'
            )
    state = dict(checkpoint['params'])
    if set(state) & set(model.state_dict()):  # named like the whole network: a training checkpoint
        target = model
    else:
        target = model.quality
    _check_state(path, state, target, expected_meta)
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as error:  # not expected after _check_state; still never half-explained
        raise CheckpointError(f'{path} does not fit SPIPS({expected_meta}): {error}') from None
    return meta


def save_heads(heads: nn.Module, path, meta: dict[str, Any] | None = None) -> Path:
    """Save a :class:`~spips_pyiqa.archs.quality_heads.QualityHeads` state dict with ``meta`` (provenance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in heads.state_dict().items()}
    torch.save({'params': state, 'meta': {'format': HEADS_FORMAT, **(meta or {})}}, path)
    return path
