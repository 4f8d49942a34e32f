"""python -m spips_pyiqa demo [--out DIR]: score an example pair made from a scikit-image photograph.

Writes ref.png (scikit-image's astronaut), target_jpeg.png and target_noise.png (JPEG quality 10
and Gaussian noise sigma 0.1) and their SPIPS quality maps into --out, then prints their scores by
pyiqa.create_metric('spips') next to LPIPS and DISTS. pyiqa's LPIPS and DISTS build torchvision's
models, which need torchvision-named backbone files offline: the demo runs them in this package's
private torch hub (spips_pyiqa.utils.weights.use_private_hub), never in the user's.
"""

from pathlib import Path
from typing import List

import numpy as np
import torch
from PIL import Image

from spips_pyiqa.cli.arguments import command_parser, run_command
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import save_heat_map
from spips_pyiqa.utils.weights import FetchError, MissingWeightsError, use_private_hub


def _save_png(image: torch.Tensor, path: Path) -> Path:
    array = (image.squeeze(0).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    Image.fromarray(array).save(path)
    return path


def _demo(args) -> None:
    import pyiqa

    from spips_pyiqa import register

    register()
    use_private_hub()
    args.out.mkdir(parents=True, exist_ok=True)
    ref = photo('astronaut')
    _save_png(ref, args.out / 'ref.png')
    metrics = {name: pyiqa.create_metric(name, device='cpu') for name in ('spips', 'lpips', 'dists')}
    print(f'{"pair":<18}' + ''.join(f'{name:>10}' for name in metrics))
    for kind, severity in (('jpeg', 2), ('noise', 2)):
        target = distort(ref, kind, severity)
        path = _save_png(target, args.out / f'target_{kind}.png')
        with torch.no_grad():
            scores = {name: metric(target, ref) for name, metric in metrics.items()}
            _, quality_map = metrics['spips'](target, ref, return_map=True)
        save_heat_map(quality_map, args.out / f'spips_map_{kind}.png')
        print(f'{path.name:<18}' + ''.join(f'{s.item():>10.4f}' for s in scores.values()))
    print(f'images and SPIPS quality maps written to {args.out}/')


def cli(argv: List[str]) -> int:
    """Entry point of demo: 0 done, 2 bad command line, 1 missing weights or an unwritable --out."""
    parser = command_parser('demo', __doc__)
    parser.add_argument('--out', type=Path, default=Path('spips_demo'),
                        help='folder the images and quality maps are written to (default: %(default)s)')
    return run_command(parser, argv, _demo, (MissingWeightsError, FetchError, OSError))

