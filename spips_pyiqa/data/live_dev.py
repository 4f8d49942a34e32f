"""The shared LIVE subsets (``../shared/data/live_dev``, ``../shared/data/live_jpeg_dev``): where
they are and how to read them, alone or together.

- ``live_dev``: 39 distorted images of three LIVE Release 2 scenes (buildings, lighthouse, monarch)
  under Gaussian blur, JPEG and white noise;
- ``live_jpeg_dev``: 82 JPEG images of 14 further LIVE Release 2 scenes, same DMOS scale.

Both: DMOS (higher = worse) in ``scores.csv`` (``dist_img, ref_img, distortion, live_name, dmos``),
one scene per reference image; together 121 images of 17 scenes (:data:`HUMAN_DATA`). Third-party
data: read at run time from ``../shared`` beside the repository, never copied into it.

References:
    H. R. Sheikh, Z. Wang, L. Cormack, A. C. Bovik, LIVE Image Quality Assessment Database Release 2.
"""

from collections.abc import Sequence
from pathlib import Path

from spips_pyiqa.data.mos_prepare import MosRow, read_mos_folders, read_scores

__all__ = ['HUMAN_DATA', 'REPO_ROOT', 'default_human_data', 'default_live_dev', 'read_human_data', 'read_live_dev',
           'shared_data']

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The human-scored folders under ``shared/data`` that the human-trained heads learn from.
HUMAN_DATA = ('live_dev', 'live_jpeg_dev')


def shared_data(name: str) -> Path:
    """``../shared/data/<name>`` beside the repository root (or beside the working folder)."""
    candidates = [REPO_ROOT.parent / 'shared', Path.cwd().resolve().parent / 'shared']
    for shared in candidates:
        if (shared / 'data' / name).is_dir():
            return shared / 'data' / name
    return candidates[0] / 'data' / name


def default_live_dev() -> Path:
    """``../shared/data/live_dev`` beside the repository root (or beside the working folder)."""
    return shared_data('live_dev')


def default_human_data() -> list[Path]:
    """The folders of :data:`HUMAN_DATA`."""
    return [shared_data(name) for name in HUMAN_DATA]


def read_live_dev(root: Path | None = None) -> list[MosRow]:
    """Checked rows of ``scores.csv`` (scene = reference image, label = DMOS)."""
    root = default_live_dev() if root is None else Path(root)
    return read_scores(root, root / 'scores.csv', 'dist_img', 'ref_img', 'dmos')


def read_human_data(roots: Sequence[Path] | None = None) -> tuple[Path, list[MosRow]]:
    """Checked rows of every folder of ``roots`` (default :data:`HUMAN_DATA`) as one list, image
    paths relative to the returned common folder (:func:`~spips_pyiqa.data.mos_prepare.read_mos_folders`)."""
    return read_mos_folders(default_human_data() if roots is None else roots, 'dist_img', 'ref_img', 'dmos')
