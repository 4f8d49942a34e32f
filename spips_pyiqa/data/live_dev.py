"""The shared LIVE subset (``../shared/data/live_dev``): where it is and how to read it.

39 distorted images of three LIVE Release 2 scenes (buildings, lighthouse, monarch) under
Gaussian blur, JPEG and white noise, with DMOS (higher = worse) in ``scores.csv``
(``dist_img, ref_img, distortion, live_name, dmos``). Third-party data: read at run time from
``../shared`` beside the repository, never copied into it.
"""

from pathlib import Path

from spips_pyiqa.data.mos_prepare import MosRow, read_scores

__all__ = ['REPO_ROOT', 'default_live_dev', 'read_live_dev']

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_live_dev() -> Path:
    """``../shared/data/live_dev`` beside the repository root (or beside the working folder)."""
    candidates = [REPO_ROOT.parent / 'shared', Path.cwd().resolve().parent / 'shared']
    for shared in candidates:
        if (shared / 'data' / 'live_dev').is_dir():
            return shared / 'data' / 'live_dev'
    return candidates[0] / 'data' / 'live_dev'


def read_live_dev(root: Path | None = None) -> list[MosRow]:
    """Checked rows of ``scores.csv`` (scene = reference image, label = DMOS)."""
    root = default_live_dev() if root is None else Path(root)
    return read_scores(root, root / 'scores.csv', 'dist_img', 'ref_img', 'dmos')
