"""``python -m spips_pyiqa score TARGET REF``: SPIPS of image files or of folders paired by name.

Prints one ``name<TAB>score`` line per pair (and the mean for folders); ``--map`` writes the fused
quality map as a heat-map PNG (a folder of them, ``<target stem>.png``, when scoring folders or when
``--map`` is an existing folder). Images are read with :func:`~spips_pyiqa.image_io.load_image` (EXIF
orientation applied, 16-bit at full precision). Errors (unreadable image, size mismatch, unpaired
names, unavailable device, missing weights, bad checkpoint) print one line and exit with status 1.
"""

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from spips_pyiqa.data.image_io import IMAGE_SUFFIXES, load_image, save_heat_map
from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS


def _image_names(folder: Path) -> set:
    return {p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()}


def image_pairs(target: Path, ref: Path) -> list[tuple[Path, Path]]:
    """The (target, ref) pairs to score: the two files, or same-named images of two folders."""
    if target.is_dir() != ref.is_dir():
        raise ValueError(f'TARGET and REF must both be files or both folders: {target}, {ref}')
    if not target.is_dir():
        return [(target, ref)]
    names = {target: _image_names(target), ref: _image_names(ref)}
    unpaired = [
        f'only in {folder}: ' + ', '.join(sorted(only)[:5]) + (f' (+{len(only) - 5} more)' if len(only) > 5 else '')
        for folder, only in ((target, names[target] - names[ref]), (ref, names[ref] - names[target]))
        if only
    ]
    if unpaired:
        raise ValueError(
            f'images are paired by file name, but {"; ".join(unpaired)}: rename or remove them so both '
            'folders hold the same names'
        )
    if not names[target]:
        raise ValueError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {target}')
    stems = [Path(name).stem for name in names[target]]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:  # their quality maps would overwrite each other
        raise ValueError(f'several images of {target} share a stem ({", ".join(clashes)}): rename them')
    return [(target / name, ref / name) for name in sorted(names[target])]


def checked_device(name: str) -> torch.device:
    """``torch.device(name)``, refusing a CUDA device that this machine does not have."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f'--device {name}: {error}') from None
    if device.type == 'cuda':
        if not torch.cuda.is_available():
            raise ValueError(f'--device {name}: CUDA is not available here (torch.cuda.is_available() '
                             'is False); use --device cpu')
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f'--device {name}: only {torch.cuda.device_count()} CUDA device(s) here')
    return device


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa score', description=__doc__)
    parser.add_argument('target', type=Path, help='distorted image, or folder of them')
    parser.add_argument('ref', type=Path, help='reference image, or folder with the same names')
    parser.add_argument('--metric', default='spips', choices=list(SPIPS_METRIC_CONFIGS),
                        help='SPIPS variant (default: spips, AlexNet)')
    parser.add_argument('--map', type=Path, help='write the quality map PNG here (a folder for folders)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    return parser


def _score_pair(metric, target_path: Path, ref_path: Path):
    target, ref = load_image(target_path), load_image(ref_path)
    try:
        with torch.no_grad():
            return metric(target, ref, return_map=True)
    except ValueError as error:  # sizes: name the files, not only the arguments
        raise ValueError(f'{target_path} vs {ref_path}: {error}') from None


def cli(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        import pyiqa

        from spips_pyiqa import register

        register()
        pairs = image_pairs(args.target, args.ref)
        metric = pyiqa.create_metric(args.metric, device=checked_device(args.device))
        into_folder = args.map is not None and (len(pairs) > 1 or args.map.is_dir())
        scores = []
        for target_path, ref_path in tqdm(pairs, disable=len(pairs) == 1, desc='SPIPS', file=sys.stderr):
            score, quality_map = _score_pair(metric, target_path, ref_path)
            scores.append(score.item())
            print(f'{target_path.name}\t{score.item():.6f}')
            if args.map:
                save_heat_map(quality_map, args.map / f'{target_path.stem}.png' if into_folder else args.map)
        if len(pairs) > 1:
            print(f'mean\t{sum(scores) / len(scores):.6f}')
    except (ValueError, TypeError, RuntimeError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
