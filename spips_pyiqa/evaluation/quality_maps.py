"""SPIPS quality maps written by ``score``: heat-map PNGs with a colour bar, optionally raw floats.

Each pair's fused quality map (``metric(target, ref, return_map=True)`` of a SPIPS variant) becomes
a PNG through :func:`~spips_pyiqa.data.image_io.save_heat_map`: the map's pixels at 1:1, a colour
bar on the right, colours from 0 to the map's maximum or over a fixed ``value_range`` (the same
scale for every image and method). ``raw`` adds the float32 map as ``.npy`` next to the PNG. The
PNG records what it was drawn from (metric, range, the inputs' stamps), so a rerun redraws exactly
the maps that would differ.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spips_pyiqa.data.image_io import heat_map_description, save_heat_map
from spips_pyiqa.evaluation.fr_metrics import gives_maps
from spips_pyiqa.evaluation.scores_file import Stamp

__all__ = ['MapOptions', 'MapOptionsError']


class MapOptionsError(ValueError):
    """Map options that cannot work: a range that is not LOW < HIGH, no SPIPS metric to map."""


@dataclass(frozen=True)
class MapOptions:
    """Heat maps of a SPIPS metric: ``path`` (a folder of ``<target stem>.png``, or one file for a
    single pair), ``metric`` (default: the first SPIPS variant asked), ``value_range`` (default: 0
    to each map's maximum), ``raw`` (also the float32 map, ``.npy`` next to the PNG)."""

    path: Path
    metric: str | None = None
    value_range: tuple[float, float] | None = None
    raw: bool = False

    def __post_init__(self):
        if self.value_range is not None:
            low, high = self.value_range
            if not (math.isfinite(low) and math.isfinite(high) and low < high):
                raise MapOptionsError(f'the map range needs finite LOW < HIGH, got {low} {high}')

    def metric_among(self, metrics: Sequence[str]) -> str:
        """The metric whose maps are drawn: :attr:`metric`, else the first SPIPS variant of ``metrics``."""
        metric = self.metric or next((m for m in metrics if gives_maps(m)), None)
        if metric is None or not gives_maps(metric) or metric not in metrics:
            raise MapOptionsError(f'quality maps come from a SPIPS metric among those scored ({", ".join(metrics)}): '
                                  'add one, e.g. spips')
        return metric

    def path_for(self, pairs: Sequence[tuple[Path, Path]], index: int, folder_mode: bool) -> Path:
        """Where the map of ``pairs[index]`` goes: ``path/<target stem>.png`` for folders."""
        if folder_mode or self.path.is_dir():
            return self.path / f'{pairs[index][0].stem}.png'
        return self.path

    def description(self, metric: str, stamp: Stamp) -> str:
        """What a map is made of, as recorded in its PNG."""
        scale = 'per-image' if self.value_range is None else '{:.9g},{:.9g}'.format(*self.value_range)
        return f'metric={metric}; range={scale}; inputs={",".join(map(str, stamp))}'

    def is_current(self, path: Path, metric: str, stamp: Stamp) -> bool:
        """Whether ``path`` holds the map these options would draw of inputs with ``stamp``."""
        return (heat_map_description(path) == self.description(metric, stamp)
                and (not self.raw or path.with_suffix('.npy').is_file()))

    def save(self, quality_map: torch.Tensor, path: Path, metric: str, stamp: Stamp) -> None:
        """Write the heat map (and the raw ``.npy``) of a :math:`(1, H, W)` or :math:`(1, 1, H, W)` map."""
        if self.raw:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path.with_suffix('.npy'), quality_map.squeeze().cpu().numpy().astype(np.float32))
        save_heat_map(quality_map, path, value_range=self.value_range, description=self.description(metric, stamp))
