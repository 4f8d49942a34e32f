"""A synthetic BAPPS-layout folder with simulated raters (the real BAPPS images are not shipped).

The benchmark times training on it at BAPPS scale (:mod:`spips_pyiqa.benchmark.scale`, 20,000
triplets); the tests use a few items of it. :func:`make_synthetic_bapps` writes the official folder layout of BAPPS (Zhang et al. 2018)::

    root/2afc/train/{traditional,cnn,mix}/{ref,p0,p1,judge}/NNNNNN.{png,npy}
    root/2afc/val/{traditional,cnn,superres,deblur,color,frameinterp}/{ref,p0,p1,judge}/...
    root/jnd/val/{traditional,cnn}/{p0,p1,same}/...

Patches are crops of scikit-image's bundled photographs. Each 2AFC triplet distorts its reference
twice with the same distortion kind at two known severities in [0, 1] (``p0`` at ``s0``, ``p1`` at
``s1``); the simulated raters prefer the less distorted image:
``h = P(prefer p1) = sigmoid((s0 - s1) / T)``, quantised to BAPPS' rater counts (2 in train, 5 in
val) as ``round(raters * P) / raters`` and stored as float32 like BAPPS. A JND pair is
(reference, distorted at ``s``) with ``same = round(3 * sigmoid((JND_THRESHOLD - s) / T)) / 3``.
Severities are stratified over [0, 1] so that even a few items span the range. Everything derives
from ``seed``: same seed, same bytes.

Distortion kinds per category imitate BAPPS' (traditional: noise/blur/JPEG, superres: down-up
sampling, deblur: blur, color: colour shift, frameinterp: ghosting), not its exact algorithms.

Reference: R. Zhang, P. Isola, A. A. Efros, E. Shechtman, O. Wang. "The Unreasonable Effectiveness
of Deep Features as a Perceptual Metric." CVPR 2018.
"""

import io
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage import data as skimage_data

from spips_pyiqa.data.bapps_prepare import JND_CATEGORIES, TRAIN_2AFC_CATEGORIES, VAL_2AFC_CATEGORIES

__all__ = ['RATERS', 'make_synthetic_bapps']

Image01 = NDArray[np.float64]  # (H, W, 3) in [0, 1]
Distortion = Callable[[Image01, float, np.random.Generator], Image01]

RATERS = {'2afc/train': 2, '2afc/val': 5, 'jnd/val': 3}
TEMPERATURE = 0.1
JND_THRESHOLD = 0.4
PHOTOGRAPHS = ('astronaut', 'coffee', 'chelsea', 'rocket')


def _noise(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    return image + rng.normal(0.0, 0.15 * severity, image.shape)


def _blur(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    return gaussian_filter(image, sigma=(3.0 * severity, 3.0 * severity, 0.0))


def _jpeg(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    buffer = io.BytesIO()
    _to_pil(image).save(buffer, format='JPEG', quality=round(95 - 90 * severity))
    return np.asarray(Image.open(buffer), dtype=np.float64) / 255.0


def _down_up(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    size = image.shape[1], image.shape[0]
    small = tuple(max(1, round(side / (1.0 + 3.0 * severity))) for side in size)
    bicubic = Image.Resampling.BICUBIC
    resized = _to_pil(image).resize(small, bicubic).resize(size, bicubic)
    return np.asarray(resized, dtype=np.float64) / 255.0


def _colour_shift(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    return image * (1.0 + 0.6 * severity * np.array([1.0, -0.5, -1.0]))


def _ghost(image: Image01, severity: float, rng: np.random.Generator) -> Image01:
    shifted = np.roll(image, shift=(1 + round(4 * severity), 1), axis=(0, 1))
    return (1.0 - 0.5 * severity) * image + 0.5 * severity * shifted


DISTORTIONS: dict[str, Distortion] = {
    'noise': _noise,
    'blur': _blur,
    'jpeg': _jpeg,
    'down_up': _down_up,
    'colour_shift': _colour_shift,
    'ghost': _ghost,
}

CATEGORY_DISTORTIONS = {
    'traditional': ('noise', 'blur', 'jpeg'),
    'cnn': ('noise', 'blur', 'jpeg', 'down_up'),
    'mix': tuple(DISTORTIONS),
    'superres': ('down_up',),
    'deblur': ('blur',),
    'color': ('colour_shift',),
    'frameinterp': ('ghost',),
}


def _to_pil(image: Image01) -> Image.Image:
    return Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8))


@lru_cache(maxsize=1)
def _photographs() -> tuple[Image01, ...]:
    """scikit-image's bundled RGB photographs as float images in [0, 1]."""
    return tuple(getattr(skimage_data, name)().astype(np.float64) / 255.0 for name in PHOTOGRAPHS)


def _random_patch(rng: np.random.Generator, size: int) -> Image01:
    """A ``size`` x ``size`` crop of a random photograph."""
    photo = _photographs()[rng.integers(len(PHOTOGRAPHS))]
    top = rng.integers(photo.shape[0] - size + 1)
    left = rng.integers(photo.shape[1] - size + 1)
    return photo[top : top + size, left : left + size]


def _severities(rng: np.random.Generator, count: int) -> NDArray[np.float64]:
    """``count`` severities, one per stratum of [0, 1], in random order."""
    return rng.permutation((np.arange(count) + rng.uniform(size=count)) / count)


def _quantised(probability: float, raters: int) -> np.float32:
    """Fraction of ``raters`` voting yes when each votes yes with ``probability`` (rounded)."""
    return np.float32(round(raters * probability) / raters)


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _distort(image: Image01, kind: str, severity: float, rng: np.random.Generator) -> Image01:
    return np.clip(DISTORTIONS[kind](image, severity, rng), 0.0, 1.0)


def _save(folder: Path, stem: str, image: Image01) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _to_pil(image).save(folder / f'{stem}.png')


def _save_judgment(folder: Path, stem: str, value: np.float32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / f'{stem}.npy', np.array([value], dtype=np.float32))


def _write_2afc_category(
    folder: Path, category: str, count: int, raters: int, size: int, rng: np.random.Generator
) -> None:
    """``count`` triplets; ``p0`` and ``p1`` share a distortion kind, not a severity."""
    kinds = CATEGORY_DISTORTIONS[category]
    for index, (s0, s1) in enumerate(zip(_severities(rng, count), _severities(rng, count))):
        stem = f'{index:06d}'
        ref = _random_patch(rng, size)
        kind = kinds[rng.integers(len(kinds))]
        _save(folder / 'ref', stem, ref)
        _save(folder / 'p0', stem, _distort(ref, kind, s0, rng))
        _save(folder / 'p1', stem, _distort(ref, kind, s1, rng))
        _save_judgment(
            folder / 'judge', stem, _quantised(_sigmoid((s0 - s1) / TEMPERATURE), raters)
        )


def _write_jnd_category(
    folder: Path, category: str, count: int, size: int, rng: np.random.Generator
) -> None:
    """``count`` (reference, distorted) pairs; 'same' falls as the severity passes JND_THRESHOLD."""
    kinds = CATEGORY_DISTORTIONS[category]
    for index, severity in enumerate(_severities(rng, count)):
        stem = f'{index:06d}'
        ref = _random_patch(rng, size)
        kind = kinds[rng.integers(len(kinds))]
        _save(folder / 'p0', stem, ref)
        _save(folder / 'p1', stem, _distort(ref, kind, severity, rng))
        same = _quantised(_sigmoid((JND_THRESHOLD - severity) / TEMPERATURE), RATERS['jnd/val'])
        _save_judgment(folder / 'same', stem, same)


def make_synthetic_bapps(
    root: Path, n_train: int = 3, n_val: int = 4, n_jnd: int = 6, size: int = 64, seed: int = 0
) -> Path:
    """Write a tiny BAPPS-layout folder under ``root`` and return ``root``.

    Args:
        root: Output folder (created; existing files of the set are overwritten).
        n_train: Triplets per 2AFC train category (traditional, cnn, mix).
        n_val: Triplets per 2AFC val category (the six BAPPS val categories).
        n_jnd: Pairs per JND val category (traditional, cnn).
        size: Patch side in pixels (BAPPS patches are 64); at most 300 (the smallest photograph).
        seed: Seed of every random choice; the same seed writes the same bytes.
    """
    if not 1 <= size <= 300:
        raise ValueError(f'size must be in [1, 300], got {size}')
    if min(n_train, n_val, n_jnd) < 1:
        raise ValueError(
            'n_train, n_val and n_jnd must be at least 1 (BAPPS has no empty category)'
        )
    root = Path(root)
    rng = np.random.default_rng(seed)
    splits = (('train', TRAIN_2AFC_CATEGORIES, n_train), ('val', VAL_2AFC_CATEGORIES, n_val))
    for split, categories, count in splits:
        for category in categories:
            folder = root / '2afc' / split / category
            _write_2afc_category(folder, category, count, RATERS[f'2afc/{split}'], size, rng)
    for category in JND_CATEGORIES:
        _write_jnd_category(root / 'jnd' / 'val' / category, category, n_jnd, size, rng)
    return root
