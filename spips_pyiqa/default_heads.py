r"""Build the default SPIPS heads shipped in ``spips_pyiqa/heads/`` and record their provenance.

BAPPS images are not reachable where this package is built, so the shipped heads are *not* the
paper's BAPPS-trained model (train that with ``python -m spips_pyiqa.train -opt
options/train_spips.yml``). They are a documented initialisation that uses no human label of any
evaluation set:

- perceptual and semantic heads (eqs. 9-10): LPIPS v0.1 linear weights of the same backbone,
  which Zhang et al. fit on BAPPS 2AFC judgments; the layers split as in eqs. (7)-(8);
- traditional head (eq. 11): the three classic measures weigh equally, 1/3 each, and the third is
  spread over MS-SSIM's scales with Wang et al.'s (2003) exponents;
- fusion (eq. 12): :data:`FUSION_WEIGHTS`, see there.

Run ``python -m spips_pyiqa.default_heads`` (after ``fetch-weights``) to regenerate the files.
"""

import sys
from typing import Dict, List, Sequence

import torch

from .checkpoint import save_heads
from .deep import SEMANTIC_LAYERS
from .heads import QualityHeads
from .spips_arch import GROUPS, HEADS_VERSION, default_heads_path, group_channels
from .traditional import MS_SSIM_WEIGHTS
from .weights import lpips_head_path

#: (net, groups) of every shipped heads file: the three backbones and the paper's two ablations.
VARIANTS = (
    ('alex', GROUPS),
    ('vgg', GROUPS),
    ('squeeze', GROUPS),
    ('alex', ('traditional', 'perceptual')),
    ('alex', ('perceptual', 'semantic')),
)
#: Traditional head weights over (PSNR, SSIM, MS-SSIM scale 1..5).
TRADITIONAL_WEIGHTS = (1 / 3, 1 / 3) + tuple(w / 3 for w in MS_SSIM_WEIGHTS)
#: Initial lambda per group, before renormalising over the groups a variant keeps. Uniform: the
#: candidate that ranked best on ``../shared/data/live_dev`` among those compared in
#: ``benchmark_results/README.md``.
FUSION_WEIGHTS: Dict[str, float] = {'traditional': 1.0, 'perceptual': 1.0, 'semantic': 1.0}


def lpips_linear_weights(net: str) -> List[torch.Tensor]:
    """LPIPS v0.1 per-layer 1x1 weights of ``net``, shallow to deep, shapes (1, C_l, 1, 1)."""
    state = torch.load(lpips_head_path(net), map_location='cpu', weights_only=True)
    layers = sorted(k for k in state if k.startswith('lin'))
    return [state[k] for k in sorted(layers, key=lambda k: int(k[3:].split('.')[0]))]


@torch.no_grad()
def build_default_heads(net: str, groups: Sequence[str]) -> QualityHeads:
    """The default heads of this module's docstring (no backbone weights needed)."""
    channels = group_channels(net, groups)
    heads = QualityHeads(channels)
    lpips = lpips_linear_weights(net)
    for group, weights in (('perceptual', lpips[:-SEMANTIC_LAYERS]), ('semantic', lpips[-SEMANTIC_LAYERS:])):
        for conv, weight in zip(heads.heads[group].convs if group in channels else (), weights):
            conv.weight.copy_(weight)
    if 'traditional' in channels:
        weight = torch.tensor(TRADITIONAL_WEIGHTS).view(1, -1, 1, 1)
        heads.heads['traditional'].convs[0].weight.copy_(weight)
    fusion = torch.tensor([FUSION_WEIGHTS[g] for g in channels])
    heads.fusion.logits.copy_(torch.log(fusion / fusion.sum()))
    return heads


def provenance(net: str) -> str:
    return (
        f'default heads v{HEADS_VERSION}, not BAPPS-trained: deep heads = LPIPS v0.1 {net} linear '
        'weights (Zhang et al. 2018, lpips==0.1.4); traditional head = 1/3 PSNR, 1/3 SSIM, '
        '1/3 MS-SSIM split by Wang et al. 2003 scale weights; fusion lambda = '
        f'{FUSION_WEIGHTS} renormalised over the kept groups'
    )


def main() -> int:
    for net, groups in VARIANTS:
        heads = build_default_heads(net, groups)
        meta = {'net': net, 'groups': list(heads.heads), 'version': HEADS_VERSION,
                'provenance': provenance(net)}
        path = save_heads(heads, default_heads_path(net, groups), meta)
        print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
