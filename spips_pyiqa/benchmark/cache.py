"""Per-metric score cache of the benchmark, keyed by what determines a metric's scores.

A metric's scores on a data set are stored in ``CACHE/<dataset>/<metric>__<key>.csv`` (columns
``item, score``) with a ``.json`` sidecar holding the fingerprint the key was made from. The key is
the sha256 (first 16 hex digits) of:

- the metric name, pyiqa's version and the metric's options in pyiqa's table;
- ``weights_sha256``: every tensor of the metric network's state dict (backbone, heads, fusion),
  so a different checkpoint is a different key;
- ``code_sha256``: the source of the network's module and of every module of the same top-level
  package it refers to (for SPIPS: ``spips_arch``, ``traditional``, ``deep``, ``heads``, ...), so an
  edit of the metric's code is a new key too;
- for SPIPS, ``cpu_convolutions``: which convolution algorithms it chose on this CPU
  (``backbone_layout``; they round differently, up to 3e-6 relative), so a cache filled on a machine that
  chose others is recomputed, not reused;
- the data set's own key (e.g. the sha256 of its scores file and images).

A rerun after adding a metric therefore computes only that metric; a rerun after retraining the
heads recomputes only the SPIPS rows. Items already cached are reused even when a run asks for a
different subset; only missing items are computed. Writing a metric's scores under a new key
removes that metric's files under older keys in the same data set folder (they can no longer be
produced by the current weights and code), so the cache holds one file per metric and data set.
"""

import csv
import hashlib
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

__all__ = ['ScoreCache', 'cache_key', 'files_sha256', 'metric_fingerprint', 'provenance']


def files_sha256(paths: Sequence[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (in the given order)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def state_dict_sha256(module: torch.nn.Module) -> str:
    """sha256 over every state-dict entry's name, dtype, shape and values."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tensor.dtype}:{tuple(tensor.shape)}'.encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return digest.hexdigest()


def _referenced_modules(module_name: str) -> list:
    """``module_name`` and every module of its top-level package that it refers to, transitively."""
    package = module_name.split('.')[0]
    seen, todo = set(), [module_name]
    while todo:
        name = todo.pop()
        if name in seen or name.split('.')[0] != package or name not in sys.modules:
            continue
        seen.add(name)
        for value in vars(sys.modules[name]).values():
            ref = value.__name__ if inspect.ismodule(value) else getattr(value, '__module__', None)
            if isinstance(ref, str):
                todo.append(ref)
    return sorted(seen)


def code_sha256(cls: type) -> str:
    """sha256 of the source files of ``cls``'s module and the modules of its package it uses."""
    files = [getattr(sys.modules[name], '__file__', None) for name in _referenced_modules(cls.__module__)]
    return files_sha256([Path(f) for f in files if f and f.endswith('.py')])


def provenance(metric: torch.nn.Module) -> str:
    """Where a metric's weights come from: SPIPS' checkpoint ``meta['provenance']``, else pyiqa."""
    meta = getattr(metric.net, 'meta', None) or {}
    if 'provenance' in meta:
        return str(meta['provenance'])
    import pyiqa

    return f'pyiqa {pyiqa.__version__} default weights and options'


def spips_convolutions(metric: torch.nn.Module) -> dict[str, str]:
    """The CPU convolution algorithm of each replaceable layer a SPIPS metric's backbone chose
    (``backbone_layout.convolutions_in_use``); empty for other metrics."""
    from spips_pyiqa.archs.backbone_layout import convolutions_in_use

    spips = getattr(metric, 'net', None)
    return convolutions_in_use(spips.deep.backbone, spips.net) if hasattr(spips, 'deep') else {}


def cpu_convolutions(metric: torch.nn.Module) -> dict[str, str]:
    """``{'cpu_convolutions': ...}`` (:func:`spips_convolutions`; they round differently, 1e-6
    relative); empty for metrics without a choice."""
    chosen = spips_convolutions(metric)
    return {'cpu_convolutions': json.dumps(chosen, sort_keys=True)} if chosen else {}


def metric_fingerprint(name: str, metric: torch.nn.Module) -> dict[str, str]:
    """What determines ``metric``'s scores (see the module docstring)."""
    import pyiqa
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    return {
        'metric': name,
        'pyiqa': pyiqa.__version__,
        'options': repr(DEFAULT_CONFIGS.get(name, {}).get('metric_opts')),
        'weights_sha256': state_dict_sha256(metric.net),
        'code_sha256': code_sha256(type(metric.net)),
        'provenance': provenance(metric),
        **cpu_convolutions(metric),
    }


def cache_key(fingerprint: dict[str, str], data_key: str) -> str:
    """16 hex digits naming one (metric fingerprint, data set) pair."""
    payload = json.dumps({**fingerprint, 'data': data_key}, sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


class ScoreCache:
    """Scores per (data set, metric, key) under ``root``; ``root=None`` caches nothing.

    Attributes:
        computed: how many items each :meth:`scores` call computed, per ``(dataset, metric)``
            (zero when everything came from the cache); for reports and tests.
    """

    def __init__(self, root: Path | None):
        self.root = None if root is None else Path(root)
        self.computed: dict[tuple, int] = {}

    def path(self, dataset: str, metric: str, key: str) -> Path | None:
        return None if self.root is None else self.root / dataset / f'{metric}__{key}.csv'

    def _load(self, path: Path | None) -> dict[str, float]:
        if path is None or not path.is_file():
            return {}
        with path.open(newline='') as handle:
            return {row['item']: float(row['score']) for row in csv.DictReader(handle)}

    def _save(self, path: Path, scores: dict[str, float], fingerprint: dict[str, str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix('.tmp')
        with partial.open('w', newline='') as handle:
            writer = csv.writer(handle)
            writer.writerow(['item', 'score'])
            writer.writerows([item, repr(score)] for item, score in sorted(scores.items()))
        partial.replace(path)
        path.with_suffix('.json').write_text(json.dumps(fingerprint, indent=1, sort_keys=True) + '\n')
        prefix = path.name.rsplit('__', 1)[0] + '__'
        for stale in path.parent.glob(prefix + '*'):
            if stale.stem != path.stem and stale.stem.startswith(prefix) and '__' not in stale.stem[len(prefix):]:
                stale.unlink(missing_ok=True)

    def scores(
        self,
        dataset: str,
        metric: str,
        key: str,
        items: Sequence[str],
        compute: Callable[[Sequence[str]], Sequence[float]],
        fingerprint: dict[str, str] | None = None,
    ) -> np.ndarray:
        """Scores of ``items``, computing (``compute(missing_items)``) only those not cached.

        Shape:
            items: ``(N,)`` names; returns ``(N,)`` float64 in the same order.
        """
        path = self.path(dataset, metric, key)
        cached = self._load(path)
        missing = [item for item in items if item not in cached]
        if missing:
            cached.update(zip(missing, map(float, compute(missing))))
            if path is not None:
                self._save(path, cached, fingerprint or {'metric': metric, 'key': key})
        self.computed[(dataset, metric)] = len(missing)
        return np.array([cached[item] for item in items], dtype=np.float64)
