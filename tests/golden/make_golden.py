r"""Golden SPIPS values: regenerate ``tests/golden/golden_values.json`` (``make golden``).

For every registered SPIPS variant that can be built offline and a few fixed scikit-image pairs
(:func:`spips_pyiqa.data.distortions.photo` / :func:`~spips_pyiqa.data.distortions.distort`) at
64 px, an odd size and 512 px, the table holds the score (eq. 12), each group distance (eqs. 9-11)
and :math:`\lambda` per group name, with the sha256 of each variant's heads state dict.
``tests/test_golden.py`` recomputes them (to 1e-5) and, when a variant's heads hash differs from the
table's, asks for this script to be rerun and the diff of the table to be reviewed: new heads
(e.g. BAPPS-trained ones) change every number on purpose, a code change should change none.

Run from the repository root: ``python tests/golden/make_golden.py`` (about 30 s on one CPU core).
"""

import hashlib
import json
import sys
from pathlib import Path
from typing import Dict, List

import torch
import torchvision.transforms.functional as TF

from spips_pyiqa.archs.spips_arch import SPIPS
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS, VARIANTS as METRIC_VARIANTS

TABLE = Path(__file__).resolve().parent / 'golden_values.json'
REGENERATE = 'python tests/golden/make_golden.py  (or `make golden`)'
#: Registered names whose backbone has an offline source (SqueezeNet has none).
VARIANTS = tuple(n for n, v in METRIC_VARIANTS.items() if v.net != 'squeeze')
#: name -> (photograph, height, width, distortion, severity); sizes: BAPPS patch, odd, ~512 px.
PAIRS = {
    'astronaut-64-noise': ('astronaut', 64, 64, 'noise', 1),
    'chelsea-64-jpeg': ('chelsea', 64, 64, 'jpeg', 2),
    'coffee-97x131-blur': ('coffee', 97, 131, 'blur', 2),
    'rocket-131x97-jpeg': ('rocket', 131, 97, 'jpeg', 1),
    'astronaut-512-jpeg': ('astronaut', 512, 512, 'jpeg', 2),
}
ATOL = 1e-5


def pair(name: str) -> tuple:
    """``(target, ref)`` of pair ``name``, each :math:`(1, 3, H, W)` in [0, 1]."""
    image, height, width, kind, severity = PAIRS[name]
    ref = TF.center_crop(photo(image), [height, width])
    return distort(ref, kind, severity), ref


def build(variant: str) -> SPIPS:
    """The registered variant with its shipped heads (the options of pyiqa's metric table)."""
    options = dict(SPIPS_METRIC_CONFIGS[variant]['metric_opts'])
    options.pop('type')
    return SPIPS(**options)


def heads_sha256(model: SPIPS) -> str:
    """sha256 of the heads state dict (keys, dtypes, shapes and float32 values, in key order)."""
    digest = hashlib.sha256()
    for key, value in sorted(model.quality.state_dict().items()):
        value = value.detach().cpu().contiguous()
        digest.update(f'{key}|{value.dtype}|{tuple(value.shape)}|'.encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def golden_row(model: SPIPS, pair_name: str) -> Dict[str, object]:
    """Score, group distances and lambda (per group name) of one pair."""
    target, ref = pair(pair_name)
    distances = model.group_distances(target, ref)
    return {
        'score': model(target, ref).item(),
        'distances': {group: d.item() for group, d in distances.items()},
        'lambda': dict(zip(model.groups, model.quality.fusion.weights.tolist())),
    }


def make_table(variants=VARIANTS) -> Dict[str, object]:
    table: Dict[str, object] = {'atol': ATOL, 'regenerate': REGENERATE, 'pairs': PAIRS, 'variants': {}}
    for variant in variants:
        model = build(variant)
        rows = {name: golden_row(model, name) for name in PAIRS}
        table['variants'][variant] = {'heads_sha256': heads_sha256(model), 'rows': rows}
        print(f'{variant}: {len(rows)} pairs', file=sys.stderr)
    return table


def main(argv: List[str] = ()) -> int:
    torch.set_num_threads(1)
    table = make_table()
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=False) + '\n')
    print(f'wrote {TABLE}: review its diff before committing', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
