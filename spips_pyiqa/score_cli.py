"""``python -m spips_pyiqa score TARGET REF``: SPIPS of image files or of folders paired by name.

Prints one ``name<TAB>score`` line per pair (and the mean for folders); ``--map`` writes the fused
quality map as a heat-map PNG (a folder of them when scoring folders). Errors (unreadable image,
size mismatch, unpaired names, missing weights) print one line and exit with status 1.
"""

import argparse
import sys
from pathlib import Path
from typing import List, Tuple

import torch
from tqdm import tqdm

from .image_io import IMAGE_SUFFIXES, load_image, save_heat_map
from .metric_configs import SPIPS_METRIC_CONFIGS


def image_pairs(target: Path, ref: Path) -> List[Tuple[Path, Path]]:
    """The (target, ref) pairs to score: the two files, or same-named images of two folders."""
    if target.is_dir() != ref.is_dir():
        raise ValueError(f'TARGET and REF must both be files or both folders: {target}, {ref}')
    if not target.is_dir():
        return [(target, ref)]
    names = [{p.name for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES} for d in (target, ref)]
    unpaired = names[0] ^ names[1]
    if unpaired:
        listed = ', '.join(sorted(unpaired)[:5]) + (' ...' if len(unpaired) > 5 else '')
        raise ValueError(f'{len(unpaired)} image(s) have no same-named partner: {listed}')
    if not names[0]:
        raise ValueError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {target}')
    return [(target / n, ref / n) for n in sorted(names[0])]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa score', description=__doc__)
    parser.add_argument('target', type=Path, help='distorted image, or folder of them')
    parser.add_argument('ref', type=Path, help='reference image, or folder with the same names')
    parser.add_argument('--metric', default='spips', choices=list(SPIPS_METRIC_CONFIGS),
                        help='SPIPS variant (default: spips, AlexNet)')
    parser.add_argument('--map', type=Path, help='write the quality map PNG here (a folder for folders)')
    parser.add_argument('--device', default='cpu', help='torch device (default: cpu)')
    return parser


def cli(argv: List[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        import pyiqa

        from . import register

        register()
        pairs = image_pairs(args.target, args.ref)
        metric = pyiqa.create_metric(args.metric, device=torch.device(args.device))
        scores = []
        for target_path, ref_path in tqdm(pairs, disable=len(pairs) == 1, desc='SPIPS', file=sys.stderr):
            target, ref = load_image(target_path), load_image(ref_path)
            with torch.no_grad():
                score, quality_map = metric(target, ref, return_map=True)
            scores.append(score.item())
            print(f'{target_path.name}\t{score.item():.6f}')
            if args.map:
                out = args.map / f'{target_path.stem}.png' if len(pairs) > 1 else args.map
                save_heat_map(quality_map, out)
        if len(pairs) > 1:
            print(f'mean\t{sum(scores) / len(scores):.6f}')
    except (ValueError, TypeError, RuntimeError, OSError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0
