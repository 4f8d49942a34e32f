r"""Build the default SPIPS heads shipped in ``spips_pyiqa/heads/`` and record their provenance.

BAPPS images are not reachable where this package is built, so the shipped heads are *not* the
paper's BAPPS-trained model (train that with ``python -m spips_pyiqa.train -opt
options/train_spips.yml``). They are a documented initialisation that uses no human label of any
evaluation set:

- perceptual and semantic heads (eqs. 9-10): LPIPS v0.1 linear weights of the same backbone,
  which Zhang et al. fit on BAPPS 2AFC judgments; the layers split as in eqs. (7)-(8);
- traditional head (eq. 11): the three classic measures weigh equally, 1/3 each, and the third is
  spread over MS-SSIM's scales with Wang et al.'s (2003) exponents;
- fusion (eq. 12), one of :data:`FUSION_RULES`:

  - ``'inverse-mean'`` (default): :math:`\lambda_g \propto 1 / \bar d_g`, where :math:`\bar d_g` is
    group g's mean distance over scikit-image photographs under noise, blur and JPEG at four
    severities each (:func:`calibration_means`; no human judgment involved), so that every group
    contributes equally on average;
  - ``'uniform'``: :math:`\lambda_g = 1/G`, the fallback where the backbone cannot be built
    (SqueezeNet offline).

The two rules were compared on ``../shared/data/live_dev`` (``python -m spips_pyiqa benchmark``, table
``default_heads``) and the better one made the default; the README reports that comparison.

Run ``python -m spips_pyiqa.recipes.label_free_heads`` (after ``fetch-weights``) to regenerate the files.
"""

import sys
from typing import Dict, List, Sequence

import torch

from spips_pyiqa.archs.checkpoint import save_heads
from spips_pyiqa.archs.deep_features import SEMANTIC_LAYERS
from spips_pyiqa.data.distortions import DISTORTIONS, PHOTOS, distort, photo
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.archs.groups import GROUPS, group_channels
from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.metric_configs import LABEL_FREE, VARIANTS as METRIC_VARIANTS
from spips_pyiqa.archs.traditional_maps import MS_SSIM_WEIGHTS
from spips_pyiqa.utils.weights import MissingWeightsError, lpips_head_path

#: (net, groups) of every shipped heads file: the three backbones and the paper's two ablations.
VARIANTS = tuple((v.net, v.groups) for v in METRIC_VARIANTS.values())
#: Traditional head weights over (PSNR, SSIM, MS-SSIM scale 1..5).
TRADITIONAL_WEIGHTS = (1 / 3, 1 / 3) + tuple(w / 3 for w in MS_SSIM_WEIGHTS)
FUSION_RULES = ('inverse-mean', 'uniform')
DEFAULT_FUSION_RULE = 'inverse-mean'
#: Side of the centre crops of the calibration photographs.
CALIBRATION_SIZE = 256


def lpips_linear_weights(net: str) -> List[torch.Tensor]:
    """LPIPS v0.1 per-layer 1x1 weights of ``net``, shallow to deep, shapes (1, C_l, 1, 1)."""
    state = torch.load(lpips_head_path(net), map_location='cpu', weights_only=True)
    layers = sorted((k for k in state if k.startswith('lin')), key=lambda k: int(k[3:].split('.')[0]))
    return [state[k] for k in layers]


@torch.no_grad()
def build_group_heads(net: str, groups: Sequence[str]) -> QualityHeads:
    """Heads of eqs. (9)-(11) as in this module's docstring; uniform fusion weights."""
    channels = group_channels(net, groups)
    heads = QualityHeads(channels)
    lpips = lpips_linear_weights(net)
    for group, weights in (('perceptual', lpips[:-SEMANTIC_LAYERS]), ('semantic', lpips[-SEMANTIC_LAYERS:])):
        for conv, weight in zip(heads.heads[group].convs if group in channels else (), weights):
            conv.weight.copy_(weight)
    if 'traditional' in channels:
        weight = torch.tensor(TRADITIONAL_WEIGHTS).view(1, -1, 1, 1)
        heads.heads['traditional'].convs[0].weight.copy_(weight)
    return heads


@torch.no_grad()
def calibration_means(net: str) -> Dict[str, float]:
    """Mean distance of each group (heads of :func:`build_group_heads`) over the calibration set.

    The set: every photograph of :data:`~spips_pyiqa.data.distortions.PHOTOS`, centre-cropped to
    :data:`CALIBRATION_SIZE`, under every distortion of
    :data:`~spips_pyiqa.data.distortions.DISTORTIONS` at its four severities (60 pairs).
    """
    model = SPIPS(net=net, pretrained=False)
    model.quality.load_state_dict(build_group_heads(net, GROUPS).state_dict())
    refs = torch.cat([photo(name, CALIBRATION_SIZE) for name in PHOTOS])
    totals = dict.fromkeys(GROUPS, 0.0)
    pairs = 0
    for kind in DISTORTIONS:
        for severity in range(4):
            distances = model.group_distances(distort(refs, kind, severity), refs)
            for group, distance in distances.items():
                totals[group] += distance.sum().item()
            pairs += len(refs)
    return {group: total / pairs for group, total in totals.items()}


@torch.no_grad()
def build_default_heads(net: str, groups: Sequence[str], fusion: Dict[str, float]) -> QualityHeads:
    """Group heads plus fusion weights ``fusion`` (per group, renormalised over ``groups``)."""
    heads = build_group_heads(net, groups)
    weights = torch.tensor([fusion[g] for g in heads.heads])
    heads.fusion.logits.copy_(torch.log(weights / weights.sum()))
    return heads


def fusion_weights(net: str, rule: str) -> Dict[str, float]:
    """Unnormalised lambda per group under fusion ``rule`` (see the module docstring)."""
    if rule == 'uniform':
        return dict.fromkeys(GROUPS, 1.0)
    if rule == 'inverse-mean':
        return {group: 1.0 / mean for group, mean in calibration_means(net).items()}
    raise ValueError(f'fusion rule must be one of {FUSION_RULES}, got {rule!r}')


def provenance(net: str, rule: str, fusion: Dict[str, float], groups: Sequence[str]) -> str:
    total = sum(fusion[g] for g in groups)
    lambdas = ', '.join(f'{g} {fusion[g] / total:.4f}' for g in groups)
    return (
        f'default heads v{LABEL_FREE}, not BAPPS-trained: deep heads = LPIPS v0.1 {net} linear '
        'weights (Zhang et al. 2018, lpips==0.1.4); traditional head = 1/3 PSNR, 1/3 SSIM, '
        f'1/3 MS-SSIM split by Wang et al. 2003 scale weights; fusion rule {rule!r}: lambda = {lambdas}'
    )


def write_heads(net: str, groups: Sequence[str], rule: str, fusion: Dict[str, float], path) -> None:
    """Save the heads of (net, groups) under fusion ``rule`` to ``path`` with their provenance."""
    heads = build_default_heads(net, groups, fusion)
    kept = list(heads.heads)
    meta = {'net': net, 'groups': kept, 'version': LABEL_FREE, 'fusion_rule': rule,
            'provenance': provenance(net, rule, fusion, kept)}
    save_heads(heads, path, meta)
    print(f'wrote {path}: {meta["provenance"]}')


def main() -> int:
    fusion_by_net = {}
    for net, groups in VARIANTS:
        if net not in fusion_by_net:
            try:
                fusion_by_net[net] = (DEFAULT_FUSION_RULE, fusion_weights(net, DEFAULT_FUSION_RULE))
            except MissingWeightsError as error:
                print(f'{net}: {error}; falling back to the uniform rule', file=sys.stderr)
                fusion_by_net[net] = ('uniform', fusion_weights(net, 'uniform'))
        rule, fusion = fusion_by_net[net]
        write_heads(net, groups, rule, fusion, default_heads_path(net, groups, LABEL_FREE))
    return 0


if __name__ == '__main__':
    sys.exit(main())
