r"""Typical values: what each metric scores for common distortions of ordinary photographs.

A user reading ``spips = 0.05`` needs to know whether that is a mild or a severe distortion, and
that the variants are **not on one scale** (their heads differ, so ``spips`` and ``spips-vgg`` of one
pair differ by a factor of several): compare numbers of one metric only. The table gives, per metric,
the median over the scikit-image photographs (:data:`~spips_pyiqa.data.distortions.PHOTOS`,
centre-cropped to :data:`SIZE` px) of the score of each distortion in :data:`SETTINGS`.
"""

import statistics
from collections.abc import Mapping

import torch

from spips_pyiqa.benchmark.tables import Table
from spips_pyiqa.data.distortions import DISTORTIONS, PHOTOS, distort, photo

__all__ = ['SETTINGS', 'SIZE', 'typical_values_table']

#: Side of the centre crop of each photograph.
SIZE = 256
#: (distortion, severity index into DISTORTIONS) shown as columns, mild to severe per kind.
SETTINGS = (('jpeg', 1), ('jpeg', 2), ('blur', 1), ('blur', 2), ('noise', 1), ('noise', 2))
_LEVEL_NAMES = {'jpeg': 'q', 'blur': 'σ', 'noise': 'σ'}


def _column(kind: str, severity: int) -> str:
    return f'{kind} {_LEVEL_NAMES[kind]}={DISTORTIONS[kind][1][severity]:g}'


@torch.no_grad()
def typical_values_table(metrics: Mapping[str, torch.nn.Module]) -> Table:
    """Median score per metric (rows) and distortion setting (columns) over the photographs.

    Args:
        metrics: pyiqa metric name -> metric (``pyiqa.create_metric``), each called on (target, ref).
    """
    refs = [photo(name, SIZE) for name in PHOTOS]
    targets = {setting: [distort(ref, *setting) for ref in refs] for setting in SETTINGS}
    columns = ['metric', 'lower better'] + [_column(*s) for s in SETTINGS]
    rows = []
    for name, metric in metrics.items():
        row = {'metric': name, 'lower better': 'yes' if metric.lower_better else 'no'}
        for setting in SETTINGS:
            values = [float(metric(t, r).item()) for t, r in zip(targets[setting], refs)]
            row[_column(*setting)] = statistics.median(values)
        rows.append(row)
    notes = [
        f'Median over {len(PHOTOS)} scikit-image photographs ({", ".join(PHOTOS)}), centre-cropped to '
        f'{SIZE}x{SIZE}, of each metric\'s score for the distortion (JPEG quality q through Pillow, '
        'Gaussian blur of σ px, additive Gaussian noise of σ on [0, 1]; `spips_pyiqa/data/distortions.py`).',
        'Variants are not on one scale: their heads differ, so compare numbers of one metric only, '
        'never `spips` with `spips-vgg` or `lpips`. Identical images score 0 for every SPIPS variant.',
        'Regenerate: `python -m spips_pyiqa benchmark --only typical`.',
    ]
    return Table('Typical values per metric', columns, rows, notes, digits=4)
