"""Image folders for the ``score`` tests, and the three-method example of the README.

``python tests/score_fixtures.py OUT_DIR`` writes ``OUT_DIR/gt`` and three "methods" (``noise``,
``blur``, ``jpeg``: scikit-image photographs under one distortion each) for
``python -m spips_pyiqa score --ref OUT_DIR/gt --methods OUT_DIR/noise OUT_DIR/blur OUT_DIR/jpeg ...``.
"""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from spips_pyiqa.data.distortions import distort, photo

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')
METHODS = {'noise': ('noise', 1), 'blur': ('blur', 2), 'jpeg': ('jpeg', 3)}


def save_png(path: Path, image: torch.Tensor) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path


def reference(i: int, side: int = 64) -> torch.Tensor:
    """Photograph ``i``: 64 x 64 for even ``i``, 80 x 64 for odd ones (so chunks mix sizes)."""
    return photo(PHOTOS[i % len(PHOTOS)], side + 32)[..., : side + 16 * (i % 2), :side]


def pair_folders(root: Path, count: int, kind: str = 'noise') -> tuple[Path, Path]:
    """``root/target`` and ``root/ref`` with ``count`` pairs ``img00.png`` ..., of two sizes."""
    for i in range(count):
        image = reference(i)
        save_png(root / 'ref' / f'img{i:02d}.png', image)
        save_png(root / 'target' / f'img{i:02d}.png', distort(image, kind, 1 + i % 3))
    return root / 'target', root / 'ref'


def methods_fixture(root: Path, count: int = 4, side: int = 64) -> tuple[Path, list[Path]]:
    """The reference folder and one folder per method of :data:`METHODS`."""
    for i in range(count):
        image = reference(i, side)
        save_png(root / 'gt' / f'img{i:02d}.png', image)
        for method, (kind, severity) in METHODS.items():
            save_png(root / method / f'img{i:02d}.png', distort(image, kind, severity))
    return root / 'gt', [root / method for method in METHODS]


if __name__ == '__main__':
    methods_fixture(Path(sys.argv[1]), count=8, side=128)
