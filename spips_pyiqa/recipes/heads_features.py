r"""What human-trained heads learn from: per image, the channel means of every SPIPS distance map.

The backbone is frozen and every distance map is non-negative (eqs. 1-8); the heads' weights are
kept non-negative, so the ReLU of eqs. (9)-(11) is the identity and a group distance is linear in
the per-channel spatial means of its maps:

.. math::
    d_g = \sum_{m \in G_g} w_m^\top \bar\Delta^m, \qquad
    \bar\Delta^m = \frac{1}{H_m W_m} \sum_{h,w} \Delta^m_{hw}.

So each image passes through SPIPS once (:func:`pooled_features`) and the heads score the means,
fed as 1x1 maps through the same :class:`~spips_pyiqa.archs.quality_heads.QualityHeads`
(:func:`scores`; equal to SPIPS on the full images, tested).

:func:`cached_features` keeps the means on disk, keyed by everything they depend on: the backbone
weights (their tensors), the source of ``spips_pyiqa/archs`` and of this module, every image and the list of
rows (names, scenes, distortion types; the labels are read afresh each time). A changed input is a new key; a stale file is never read.

References:
    Lao & Yu, "SPIPS", 2025, eqs. (1)-(12).
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from spips_pyiqa.archs.backbone_layout import convolutions_in_use
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.archs.spips_arch import SPIPS
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.mos_prepare import MosRow
from spips_pyiqa.metric_configs import GROUPS, LABEL_FREE
from spips_pyiqa.utils.weights import backbone_features, features_sha256, file_sha256

__all__ = ['Features', 'cached_features', 'features_key', 'pooled_features', 'scores']

ARCHS = Path(__file__).resolve().parents[1] / 'archs'


@dataclass(frozen=True)
class Features:
    """Per image, the channel means of every distance map, and what people said of it.

    Attributes:
        means: per group, per map, a tensor :math:`(N, C_m)`.
        badness: human score oriented as a distance (DMOS), :math:`(N,)`.
        scenes, distortions, names: per image.
    """

    means: dict[str, list[torch.Tensor]]
    badness: np.ndarray
    scenes: tuple[str, ...]
    distortions: tuple[str, ...]
    names: tuple[str, ...]

    def select_groups(self, groups: Sequence[str]) -> 'Features':
        return Features({g: self.means[g] for g in groups}, self.badness, self.scenes, self.distortions, self.names)


def _features(means: dict[str, list[torch.Tensor]], rows: Sequence[MosRow]) -> Features:
    return Features(
        means=means,
        badness=np.array([row.mos for row in rows], dtype=np.float64),
        scenes=tuple(row.scene for row in rows),
        distortions=tuple(row.distortion for row in rows),
        names=tuple(row.dist for row in rows),
    )


@torch.no_grad()
def pooled_features(net: SPIPS, rows: Sequence[MosRow], root: Path, progress: str = '') -> Features:
    """Channel means of every distance map of each row's (distorted, reference) pair.

    Shape:
        ``means[group][m]``: :math:`(N, C_m)` for the ``N`` rows.
    """
    means: dict[str, list[list[torch.Tensor]]] = {}
    for row in tqdm(rows, desc=progress or None, disable=not progress):
        maps = net.distance_maps(load_image(Path(root) / row.dist), load_image(Path(root) / row.ref))
        for group, group_maps in maps.items():
            per_map = means.setdefault(group, [[] for _ in group_maps])
            for store, m in zip(per_map, group_maps):
                store.append(m.mean(dim=(2, 3)))
    return _features({g: [torch.cat(store) for store in per_map] for g, per_map in means.items()}, rows)


def scores(heads: QualityHeads, features: Features, index: Sequence[int]) -> torch.Tensor:
    """SPIPS of the images ``index`` from their channel means (1x1 maps).

    Shape:
        returns :math:`(n,)` for the ``n`` indices.
    """
    index = torch.as_tensor(list(index), dtype=torch.long)
    maps = {g: [m[index][:, :, None, None] for m in ms] for g, ms in features.means.items() if g in heads.heads}
    return heads(maps)[0].reshape(-1)


def features_key(net: str, rows: Sequence[MosRow], root: Path, convolutions: dict[str, str]) -> dict[str, str]:
    """What the features of ``rows`` under backbone ``net`` depend on, as sha256 digests, and the
    CPU ``convolutions`` in use (:func:`~spips_pyiqa.archs.backbone_layout.convolutions_in_use`: the
    algorithms chosen on this machine round differently, 1e-6 relative)."""
    root = Path(root)
    code = sorted(ARCHS.glob('*.py')) + [Path(__file__).resolve()]
    data = sorted({root / p for row in rows for p in (row.dist, row.ref)})
    digest = hashlib.sha256()
    for path in data:
        digest.update(path.relative_to(root).as_posix().encode() + file_sha256(path).encode())
    listing = json.dumps([(r.dist, r.ref, r.scene, r.distortion) for r in rows]).encode()
    return {
        'net': net,
        'backbone_sha256': features_sha256(backbone_features(net)),
        'code_sha256': hashlib.sha256(''.join(file_sha256(p) for p in code).encode()).hexdigest(),
        'data_sha256': digest.hexdigest(),
        'rows_sha256': hashlib.sha256(listing).hexdigest(),
        'cpu_convolutions': json.dumps(convolutions, sort_keys=True),
    }


def cached_features(net: str, rows: Sequence[MosRow], root: Path, cache: Path | None, progress: str = '') -> Features:
    """:func:`pooled_features` of the label-free SPIPS of ``net`` (all groups), read from
    ``cache/<net>__<key>.pt`` when its key (:func:`features_key`) matches, else computed and saved
    there (older files of ``net`` removed). ``cache=None``: always computed.

    The label-free heads weigh every traditional map, so every map is computed in full.
    """
    model = SPIPS(net, GROUPS, heads_version=LABEL_FREE).eval()
    compute = lambda: pooled_features(model, rows, root, progress)
    if cache is None:
        return compute()
    fingerprint = features_key(net, rows, root, convolutions_in_use(model.deep.backbone, net))
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(cache) / f'{net}__{key}.pt'
    if path.is_file():
        stored = torch.load(path, map_location='cpu', weights_only=True)
        if stored['fingerprint'] == fingerprint and list(stored['names']) == [row.dist for row in rows]:
            return _features(stored['means'], rows)
    features = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f'{net}__*.pt'):
        stale.unlink()
    partial = path.with_suffix('.tmp')
    torch.save({'fingerprint': fingerprint, 'names': list(features.names), 'means': features.means}, partial)
    partial.replace(path)
    return features
