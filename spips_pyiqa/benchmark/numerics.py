r"""Numbers behind README's "Numerics": sensitivity to tiny perturbations and memory at 2048 px.

``python -m spips_pyiqa.benchmark.numerics --out benchmark_results/`` writes ``numerics.md``:

- *Sensitivity*: for real photographs (scikit-image's, centre-cropped) distorted by noise, blur and
  JPEG, the change :math:`|\mathrm{SPIPS}(x + d) - \mathrm{SPIPS}(x)|` of the score of the
  distorted image ``x`` for :math:`\lVert d \rVert_\infty \le 10^{-4}`, with ``d`` either
  *random* (uniform in :math:`[-10^{-4}, 10^{-4}]`, several seeds) or *worst case* to first order,
  :math:`d = \pm 10^{-4} \operatorname{sign}(\nabla_x \mathrm{SPIPS})` (the steepest step of that
  size; ``x + d`` is clipped to [0, 1]). Random steps mostly cancel; the signed step does not.
- *Memory at 2048 px*: one ``create_metric('spips')`` call on a 2048x2048 pair in a fresh process,
  measured as in ``benchmark_results/memory_cpu.md`` (:func:`spips_pyiqa.benchmark.speed.memory_child`).
"""

import argparse
import sys
from pathlib import Path

import torch
import torchvision.transforms.functional as TF

from spips_pyiqa.benchmark.speed import _measure_memory
from spips_pyiqa.data.distortions import DISTORTIONS, PHOTOS, distort, photo

STEP = 1e-4
SEEDS = 5


def sensitivity(metric, size: int) -> dict[str, float]:
    """Largest score change for random and worst-case steps of size :data:`STEP`, over photos x kinds."""
    worst = {'random': 0.0, 'signed gradient': 0.0}
    for name in PHOTOS[:4]:
        ref = TF.center_crop(photo(name), [size, size])
        for kind in DISTORTIONS:
            x = distort(ref, kind, 1).requires_grad_(True)
            score = metric(x, ref)
            (gradient,) = torch.autograd.grad(score.sum(), x)
            with torch.no_grad():
                generator = torch.Generator().manual_seed(0)
                for _ in range(SEEDS):
                    d = (torch.rand(x.shape, generator=generator) * 2 - 1) * STEP
                    shift = (metric((x + d).clamp(0, 1), ref) - score).abs().item()
                    worst['random'] = max(worst['random'], shift)
                for sign in (1, -1):
                    shift = (metric((x + sign * STEP * gradient.sign()).clamp(0, 1), ref) - score).abs().item()
                    worst['signed gradient'] = max(worst['signed gradient'], shift)
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('benchmark_results'))
    parser.add_argument('--sizes', type=int, nargs='+', default=[96, 256, 512])
    args = parser.parse_args(argv)
    import pyiqa

    from spips_pyiqa import register

    register()
    metric = pyiqa.create_metric('spips', device='cpu', as_loss=True)  # differentiable; same scores
    lines = [
        '### Numerics (CPU, `python -m spips_pyiqa.benchmark.numerics`)', '',
        f'Largest |SPIPS(x + d) - SPIPS(x)| with |d| <= {STEP:g} per pixel, over {len(PHOTOS[:4])} '
        f'scikit-image photographs x noise/blur/JPEG (severity 1); random: {SEEDS} uniform draws each; '
        'signed gradient: d = +-1e-4 sign(grad SPIPS), the first-order worst case.', '',
        '| size | random d | worst-case d |', '|---|---|---|',
    ]
    for size in args.sizes:
        worst = sensitivity(metric, size)
        lines.append(f'| {size} px | {worst["random"]:.1e} | {worst["signed gradient"]:.1e} |')
        print(lines[-1], file=sys.stderr)
    memory = _measure_memory('spips', 2048, 1, 'cpu')
    lines += ['', 'Memory of one `spips` call on a 2048x2048 pair (CPU, fresh process; method of memory_cpu.md): '
              + (f'{memory["inference_mib"] / 1024:.2f} GiB above the loaded metric and inputs, '
                 f'{memory["process_mib"] / 1024:.2f} GiB process peak RSS ({memory["method"]}).'
                 if 'error' not in memory else f'failed: {memory["error"]}')]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'numerics.md').write_text('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
