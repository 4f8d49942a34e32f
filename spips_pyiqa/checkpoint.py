"""SPIPS checkpoints: strict loading with clear errors, and saving with provenance.

Two layouts load, both ``{'params': state_dict, ...}`` (pyiqa's ``save_network`` layout):

- a *heads* checkpoint: exactly the state dict of :class:`~spips_pyiqa.heads.QualityHeads` (all
  that SPIPS learns with a frozen backbone) plus ``'meta'`` (backbone, groups, version,
  provenance), as shipped in ``spips_pyiqa/heads/``;
- a *full* checkpoint as written by pyiqa's training loop: every key of the SPIPS network.

Anything else is refused with the missing/unexpected keys named: pyiqa loads LPIPS non-strictly, so
a wrong file there goes unnoticed; here it cannot.
"""

from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

HEADS_FORMAT = 'spips-heads'


class CheckpointError(ValueError):
    """A SPIPS checkpoint that cannot be read or does not fit the network."""


def read_checkpoint(path) -> Dict[str, Any]:
    """Load a checkpoint file safely (``weights_only``) or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'SPIPS checkpoint not found: {path}')
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # truncated zip, garbage bytes, foreign pickle...
        first_line = (str(error).splitlines() or [''])[0][:200]
        raise CheckpointError(
            f'cannot read SPIPS checkpoint {path}: truncated, corrupted or not a torch file '
            f'({type(error).__name__}: {first_line})'
        ) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get('params'), dict):
        raise CheckpointError(f"{path} is not a SPIPS checkpoint: no 'params' state dict")
    return checkpoint


def _describe(keys) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:4]) + (f' (+{len(keys) - 4} more)' if len(keys) > 4 else '') or 'none'


def load_checkpoint(model: nn.Module, path, expected_meta: Dict[str, Any]) -> Dict[str, Any]:
    """Load ``path`` into the SPIPS ``model`` strictly; return the checkpoint's ``meta``.

    ``expected_meta`` (e.g. ``{'net': 'alex', 'groups': [...]}``) is compared with the
    checkpoint's own ``meta`` where it has one, so a VGG file given to an AlexNet SPIPS is named as
    such rather than reported as a shape mismatch.
    """
    checkpoint = read_checkpoint(path)
    meta = checkpoint.get('meta', {})
    for field, wanted in expected_meta.items():
        if field in meta and meta[field] != wanted:
            raise CheckpointError(
                f'{path} was made for {field}={meta[field]!r} but this SPIPS has {field}={wanted!r}'
            )
    state = checkpoint['params']
    full_keys = set(model.state_dict())
    if set(state) & full_keys:  # named like the whole network: a training checkpoint
        target, expected = model, full_keys
    else:
        target, expected = model.quality, set(model.quality.state_dict())
    if set(state) != expected:
        raise CheckpointError(
            f'{path} does not fit SPIPS({expected_meta}): missing keys: '
            f'{_describe(expected - set(state))}; unexpected keys: {_describe(set(state) - expected)}'
        )
    try:
        target.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise CheckpointError(f'{path} does not fit SPIPS({expected_meta}): {error}') from None
    return meta


def save_heads(heads: nn.Module, path, meta: Optional[Dict[str, Any]] = None) -> Path:
    """Save a :class:`~spips_pyiqa.heads.QualityHeads` state dict with ``meta`` (provenance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in heads.state_dict().items()}
    torch.save({'params': state, 'meta': {'format': HEADS_FORMAT, **(meta or {})}}, path)
    return path
