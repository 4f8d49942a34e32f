"""Tiny MOS data sets in the exact layouts pyiqa expects for LIVE, CSIQ, TID2013, KADID-10k and PIPAL.

The real data sets cannot be shipped or downloaded here; :func:`make_fr_fixture` writes a
stand-in at the paths of pyiqa's ``default_dataset_configs.yml`` under a data root that plays the
role of pyiqa's ``./datasets`` folder, so pyiqa's own options (paths rewritten by
:func:`~spips_pyiqa.data.pyiqa_datasets.fr_dataset_options`) load it with ``build_dataset``:

* ``live``: ``LIVEIQA_release2/refimgs/S.bmp``, ``LIVEIQA_release2/{wn,gblur,jpeg}/imgK.bmp``;
  DMOS in [1, 100] (``lower_better``);
* ``csiq``: ``CSIQ/src_imgs/S.png``, ``CSIQ/dst_imgs/S.{AWGN,BLUR,JPEG}.L.png``; DMOS in [0, 1];
* ``tid2013``: ``tid2013/reference_images/INN.BMP``, ``tid2013/distorted_images/iNN_TT_L.bmp``
  (TT 01/08/10 = noise/blur/JPEG); MOS in [0, 9] (higher better);
* ``kadid10k``: ``kadid10k/images/INN.png`` and ``kadid10k/images/INN_TT_0L.png`` (TT 11/01/10);
  MOS in [1, 5];
* ``pipal``: ``PIPAL/Train_Ref/ANNNN.bmp``, ``PIPAL/Dist_Imgs/ANNNN_TT_SS.bmp`` (from ``_00``); score in [0, 1],
  higher better;

with the meta-info CSV at ``meta_info/meta_info_<Name>Dataset.csv`` (reference, distorted, score
first, as pyiqa reads them by position, under each data set's own column names). PIPAL's CSV has an ``official_split``
column (pyiqa's ``split_index: official_split``): scene ``k`` is ``train``, ``val``, ``test``,
``train``, ... in turn, so every phase has whole scenes.

Content: ``n_scenes`` scikit-image photographs (:data:`~spips_pyiqa.data.distortions.PHOTOS`,
centre crops of ``size`` pixels), each distorted by noise, blur and JPEG at the four severities of
:mod:`spips_pyiqa.data.distortions`. The score is a deterministic function of severity:
badness ``b = (severity + 1) / 5 + u`` with ``u`` uniform in ``[-0.03, 0.03]`` from ``seed`` (small
enough that severities never swap), mapped into the data set's ``mos_range`` in its direction:
``lo + b (hi - lo)`` when ``lower_better`` (DMOS), ``hi - b (hi - lo)`` otherwise (MOS). Same
arguments, same bytes.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spips_pyiqa.data.distortions import DISTORTIONS, PHOTOS, distort, photo
from spips_pyiqa.data.pyiqa_datasets import fr_dataset_options

__all__ = ['LAYOUTS', 'Layout', 'make_fr_fixture']

JITTER = 0.03
SEVERITIES = tuple(range(len(next(iter(DISTORTIONS.values()))[1])))
PIPAL_SPLITS = ('train', 'val', 'test')


@dataclass(frozen=True)
class Layout:
    """File names and meta-info columns of one data set.

    ``ref`` and ``dist`` are ``str.format`` patterns with the fields ``scene`` (photograph name),
    ``n`` (scene number from 1), ``code`` (the data set's code of the distortion kind), ``level``
    (severity from 1), ``severity`` (from 0) and ``index`` (running number of the distorted
    image within its kind, from 1).
    """

    ref: str
    dist: str
    codes: dict
    columns: tuple


LAYOUTS = {
    'live': Layout('refimgs/{scene}.bmp', '{code}/img{index}.bmp',
                   {'noise': 'wn', 'blur': 'gblur', 'jpeg': 'jpeg'}, ('ref_name', 'dist_name', 'mos')),
    'csiq': Layout('{scene}.png', '{scene}.{code}.{level}.png',
                   {'noise': 'AWGN', 'blur': 'BLUR', 'jpeg': 'JPEG'}, ('ref_name', 'dist_name', 'dmos')),
    'tid2013': Layout('I{n:02d}.BMP', 'i{n:02d}_{code:02d}_{level}.bmp',
                      {'noise': 1, 'blur': 8, 'jpeg': 10}, ('ref_name', 'dist_name', 'mos', 'std')),
    'kadid10k': Layout('I{n:02d}.png', 'I{n:02d}_{code:02d}_{level:02d}.png',
                       {'noise': 11, 'blur': 1, 'jpeg': 10}, ('ref_name', 'dist_name', 'dmos', 'std')),
    'pipal': Layout('A{n:04d}.bmp', 'A{n:04d}_{code:02d}_{severity:02d}.bmp',
                    {'noise': 0, 'blur': 1, 'jpeg': 2}, ('hq_name', 'dist_name', 'elo_score', 'official_split')),
}


def _save(image: torch.Tensor, path: Path) -> None:
    """Save a ``(1, 3, H, W)`` image in [0, 1] as 8-bit RGB (format from the extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = (image[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path)


def _score(severity: int, jitter: float, mos_range, lower_better: bool) -> float:
    lo, hi = (float(v) for v in mos_range)
    badness = (severity + 1) / (len(SEVERITIES) + 1) + jitter
    return round(lo + badness * (hi - lo) if lower_better else hi - badness * (hi - lo), 4)


def make_fr_fixture(
    data_root: Path,
    dataset: str,
    n_scenes: int = 3,
    size: int = 64,
    kinds: tuple = tuple(DISTORTIONS),
    seed: int = 0,
) -> dict:
    """Write a tiny ``dataset`` (``live``, ``csiq``, ``tid2013``, ``kadid10k`` or ``pipal``) under ``data_root``.

    Args:
        data_root: plays pyiqa's ``./datasets``; the data set's folders and
            ``meta_info/meta_info_<Name>Dataset.csv`` are written below it.
        n_scenes: reference photographs, at most ``len(PHOTOS)``.
        size: side of the square centre crops, 16 to 300 pixels.
        kinds: distortion kinds of :data:`~spips_pyiqa.data.distortions.DISTORTIONS`.
        seed: seed of the score jitter.

    Returns:
        pyiqa's options for ``dataset`` with paths under ``data_root`` (no ``phase``: pyiqa's
        default ``train``; PIPAL selects rows by it), ready for ``pyiqa.data.build_dataset``.

    Shape:
        ``n_scenes * len(kinds) * 4`` rows; images ``size`` x ``size`` RGB.
    """
    if dataset not in LAYOUTS:
        raise ValueError(f'no fixture layout for {dataset!r} (one of: {", ".join(LAYOUTS)})')
    if not 1 <= n_scenes <= len(PHOTOS):
        raise ValueError(f'n_scenes must be 1 to {len(PHOTOS)}, got {n_scenes}')
    if not 16 <= size <= 300:
        raise ValueError(f'size must be 16 to 300 pixels, got {size}')
    unknown = [k for k in kinds if k not in DISTORTIONS]
    if unknown or not kinds:
        raise ValueError(f'unknown distortion kinds {unknown} (choose from {", ".join(DISTORTIONS)})')
    layout, options = LAYOUTS[dataset], fr_dataset_options(dataset, Path(data_root))
    target_root = Path(options['dataroot_target'])
    ref_root = Path(options.get('dataroot_ref', target_root))
    jitter = np.random.default_rng(seed).uniform(-JITTER, JITTER, (n_scenes, len(kinds), len(SEVERITIES)))
    std = round(0.05 * (options['mos_range'][1] - options['mos_range'][0]), 4)
    rows, counters = [], dict.fromkeys(kinds, 0)
    for s, scene in enumerate(PHOTOS[:n_scenes]):
        reference = photo(scene, size)
        ref_name = layout.ref.format(scene=scene, n=s + 1)
        _save(reference, ref_root / ref_name)
        for k, kind in enumerate(kinds):
            for severity in SEVERITIES:
                counters[kind] += 1
                fields = dict(scene=scene, n=s + 1, code=layout.codes[kind], level=severity + 1,
                              severity=severity, index=counters[kind])
                dist_name = layout.dist.format(**fields)
                _save(distort(reference, kind, severity), target_root / dist_name)
                score = _score(severity, jitter[s, k, severity], options['mos_range'], options['lower_better'])
                extra = {'std': std, 'official_split': PIPAL_SPLITS[s % len(PIPAL_SPLITS)]}
                rows.append([ref_name, dist_name, score, *(extra[c] for c in layout.columns[3:])])
    meta = Path(options['meta_info_file'])
    meta.parent.mkdir(parents=True, exist_ok=True)
    lines = [','.join(layout.columns)] + [','.join(str(v) for v in row) for row in rows]
    meta.write_text('\n'.join(lines) + '\n')
    return options
