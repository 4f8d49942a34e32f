r"""Human-trained SPIPS heads: learned from opinion scores, chosen by scene-wise cross-validation.

**Why training needs no image pass per step.** The backbone is frozen and every distance map is
non-negative (eqs. 1-8); the heads' weights are kept non-negative, so the ReLU of eqs. (9)-(11) is
the identity and a group distance is linear in the per-channel spatial means of its maps:

.. math::
    d_g = \sum_{m \in G_g} w_m^\top \bar\Delta^m, \qquad
    \bar\Delta^m = \frac{1}{H_m W_m} \sum_{h,w} \Delta^m_{hw}.

So each image is passed through SPIPS once (:func:`pooled_features`), and the heads train on the
means, fed as 1x1 maps through the same :class:`~spips_pyiqa.archs.quality_heads.QualityHeads`:
the scores are SPIPS's own on the full images (tested), and an epoch over live_dev takes
milliseconds, which makes honest cross-validation affordable. The criterion and prior are the
ones of the pyiqa training model (:mod:`spips_pyiqa.losses.mos_losses`).

**How a recipe is chosen.** Each :class:`Recipe` (which parts learn, which pairs, prior strength)
is scored by its held-out SRCC on two kinds of fold: leave one *scene* out (unseen content) and
leave one *distortion type* out (unseen distortions; the data has only three). The selection
criterion is the mean per-fold SRCC over all of them; "label-free" (the heads of
:mod:`~spips_pyiqa.recipes.label_free_heads`, no training) competes too. The selection itself is
cross-validated (:func:`nested_scene_cv`: the recipe is chosen on the training scenes alone), so
the reported estimate does not profit from the choice. Human-trained heads ship for a variant only
when they beat label-free on both the nested scene estimate and the distortion folds
(:attr:`CVReport.ships`).

``python -m spips_pyiqa.recipes.human_heads`` (``make heads``) writes the shipped heads with this
provenance; ``python -m spips_pyiqa benchmark --only human-heads`` the tables and curves.

References:
    Lao & Yu, "SPIPS", 2025, eqs. (9)-(12). LIVE: H. R. Sheikh, Z. Wang, L. Cormack, A. C. Bovik,
    LIVE Image Quality Assessment Database Release 2.
"""

import argparse
import copy
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from tqdm import tqdm

from spips_pyiqa.archs.checkpoint import save_heads
from spips_pyiqa.archs.groups import GROUPS
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.live_dev import default_live_dev, read_live_dev
from spips_pyiqa.data.mos_prepare import MosRow
from spips_pyiqa.losses.mos_losses import HeadsPrior, pairwise_preference_loss
from spips_pyiqa.metric_configs import HUMAN_TRAINED, LABEL_FREE, VARIANTS as METRIC_VARIANTS

__all__ = [
    'UNTRAINED',
    'VARIANTS',
    'CVReport',
    'CVResult',
    'Features',
    'Recipe',
    'build_human_heads',
    'candidate_recipes',
    'cross_validate',
    'cross_validation_report',
    'nested_scene_cv',
    'pooled_features',
    'select_recipe',
    'train_heads',
]

#: The variants this recipe makes heads for, with their backbone and groups (from the variants table).
VARIANTS = {name: (v.net, v.groups) for name, v in METRIC_VARIANTS.items() if v.human_trained}


@dataclass(frozen=True)
class Features:
    """Per image, the channel means of every distance map, and what people said of it.

    Attributes:
        means: per group, per map, a tensor :math:`(N, C_m)`.
        badness: human score oriented as a distance (DMOS), :math:`(N,)`.
        scenes, distortions, names: per image.
    """

    means: dict[str, list[torch.Tensor]]
    badness: np.ndarray
    scenes: tuple[str, ...]
    distortions: tuple[str, ...]
    names: tuple[str, ...]

    def select_groups(self, groups: Sequence[str]) -> 'Features':
        return Features({g: self.means[g] for g in groups}, self.badness, self.scenes, self.distortions, self.names)


@dataclass(frozen=True)
class Recipe:
    """How heads learn: which parts, from which pairs, how strongly held to their start.

    Attributes:
        learn: parts that learn: ``'fusion'`` and/or group names; empty: no training (label-free).
        within_scene: compare only images of the same scene.
        prior: strength :math:`\alpha` of :class:`~spips_pyiqa.losses.mos_losses.HeadsPrior`.
        lr, epochs: full-batch Adam.
        temperature: :math:`\tau` of the pairwise loss, relative to the spread of the starting
            heads' scores on the training images.
    """

    learn: tuple[str, ...] = ()
    within_scene: bool = False
    prior: float = 0.0
    lr: float = 0.05
    epochs: int = 100
    temperature: float = 0.5

    @property
    def name(self) -> str:
        if not self.learn:
            return 'label-free'
        pairs = 'scene pairs' if self.within_scene else 'all pairs'
        return f'learn {"+".join(self.learn)}; {pairs}; prior {self.prior:g}'


UNTRAINED = Recipe()


def candidate_recipes(groups: Sequence[str]) -> list[Recipe]:
    """The recipes cross-validation chooses from for a variant with ``groups``: what learns (the 3
    fusion weights; + the 7 traditional weights; every head), from which pairs, and for the ~1,150
    weights of every head, how strongly they are held to their start."""
    parts = [('fusion',), ('fusion', 'traditional'), ('fusion', *groups)]
    parts = [p for p in dict.fromkeys(parts) if set(p) - {'fusion'} <= set(groups)]
    recipes = [UNTRAINED]
    for learn in parts:
        priors = (0.0, 0.01, 0.1) if len(learn) > 2 else (0.0,)
        for within in (False, True):
            recipes += [Recipe(learn=learn, within_scene=within, prior=prior) for prior in priors]
    return recipes


# --------------------------------------------------------------------------------------------
# features and scores
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def pooled_features(net: SPIPS, rows: Sequence[MosRow], root: Path, progress: str = '') -> Features:
    """Channel means of every distance map of each row's (distorted, reference) pair."""
    means: dict[str, list[list[torch.Tensor]]] = {}
    for row in tqdm(rows, desc=progress or None, disable=not progress):
        maps = net.distance_maps(load_image(Path(root) / row.dist), load_image(Path(root) / row.ref))
        for group, group_maps in maps.items():
            per_map = means.setdefault(group, [[] for _ in group_maps])
            for store, m in zip(per_map, group_maps):
                store.append(m.mean(dim=(2, 3)))
    return Features(
        means={g: [torch.cat(store) for store in per_map] for g, per_map in means.items()},
        badness=np.array([row.mos for row in rows], dtype=np.float64),
        scenes=tuple(row.scene for row in rows),
        distortions=tuple(row.distortion for row in rows),
        names=tuple(row.dist for row in rows),
    )


def scores(heads: QualityHeads, features: Features, index: Sequence[int]) -> torch.Tensor:
    """SPIPS of the images ``index`` from their channel means (1x1 maps), shape :math:`(n,)`."""
    index = torch.as_tensor(index, dtype=torch.long)
    maps = {g: [m[index][:, :, None, None] for m in ms] for g, ms in features.means.items() if g in heads.heads}
    return heads(maps)[0].reshape(-1)


def _srcc(x, y) -> float:
    return float(stats.spearmanr(x, y).statistic)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def train_heads(
    start: QualityHeads,
    features: Features,
    index: Sequence[int],
    recipe: Recipe,
    monitor: Sequence[int] | None = None,
) -> tuple[QualityHeads, list[dict[str, float]]]:
    """Train a copy of ``start`` on the images ``index``; return it and the per-epoch curve.

    After training, the heads are rescaled to the starting heads' mean score on ``index``
    (:func:`_keep_scale`). The curve has the training loss and, when ``monitor`` (held-out images)
    is given, their SRCC.
    """
    heads = copy.deepcopy(start)
    curve: list[dict[str, float]] = []
    if not recipe.learn:
        return heads, curve
    parts = {'fusion': heads.fusion, **heads.heads}
    for name, module in parts.items():
        module.requires_grad_(name in recipe.learn)
    prior = HeadsPrior(heads, recipe.prior) if recipe.prior else None
    optimizer = torch.optim.Adam([p for p in heads.parameters() if p.requires_grad], lr=recipe.lr)
    target = torch.as_tensor(features.badness[list(index)])
    groups = torch.as_tensor([sorted(set(features.scenes)).index(features.scenes[i]) for i in index])
    with torch.no_grad():
        start_scores = scores(heads, features, index)
    temperature = recipe.temperature * start_scores.std()
    for epoch in range(recipe.epochs + 1):
        with torch.enable_grad():
            loss = pairwise_preference_loss(
                scores(heads, features, index), target, temperature,
                groups if recipe.within_scene else None,
            )
            total = loss + prior(heads) if prior is not None else loss
        point = {'epoch': epoch, 'loss': float(loss.detach())}
        if monitor is not None:
            with torch.no_grad():
                point['held-out SRCC'] = _srcc(scores(heads, features, monitor), features.badness[list(monitor)])
        curve.append(point)
        if epoch == recipe.epochs:
            break
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        heads.clamp_weights()
    heads.requires_grad_(False)
    _keep_scale(heads, start_scores.mean(), features, index)
    return heads, curve


@torch.no_grad()
def _keep_scale(heads: QualityHeads, start_mean: torch.Tensor, features: Features, index: Sequence[int]) -> None:
    """Scale every head weight by one factor so the mean score on the training images is
    ``start_mean``, the starting heads' (one global factor: no ranking or correlation changes; SPIPS keeps its range,
    and models of different folds stay comparable)."""
    factor = start_mean / scores(heads, features, index).mean().clamp_min(1e-12)
    for head in heads.heads.values():
        for conv in head.convs:
            conv.weight.mul_(factor)


def folds(features: Features, by: str, subset: Sequence[int] | None = None) -> list[tuple[str, list[int], list[int]]]:
    """``(held-out name, train indices, test indices)`` leaving one scene or distortion type out."""
    keys = features.scenes if by == 'scene' else features.distortions
    subset = list(range(len(keys))) if subset is None else list(subset)
    names = sorted({keys[i] for i in subset})
    return [(n, [i for i in subset if keys[i] != n], [i for i in subset if keys[i] == n]) for n in names]


@dataclass
class CVResult:
    """Held-out SRCC per fold, the out-of-fold predictions, and each fold's training curve."""

    fold_srcc: dict[str, float]
    predictions: np.ndarray
    curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    @property
    def mean_srcc(self) -> float:
        return float(np.mean(list(self.fold_srcc.values())))


def cross_validate(start: QualityHeads, features: Features, recipe: Recipe, by: str,
                   subset: Sequence[int] | None = None, curves: bool = False) -> CVResult:
    """Leave-one-``by``-out (``'scene'`` or ``'distortion'``) cross-validation of a recipe;
    ``curves``: also record each fold's held-out SRCC per epoch."""
    predictions = np.full(len(features.badness), np.nan)
    result = CVResult({}, predictions)
    for name, train, test in folds(features, by, subset):
        heads, curve = train_heads(start, features, train, recipe, monitor=test if curves else None)
        with torch.no_grad():
            predictions[test] = scores(heads, features, test).numpy()
        result.fold_srcc[name] = _srcc(predictions[test], features.badness[test])
        result.curves[name] = curve
    return result


def select_recipe(start: QualityHeads, features: Features, candidates: Sequence[Recipe],
                  subset: Sequence[int] | None = None) -> tuple[Recipe, dict[Recipe, float]]:
    """The candidate with the best mean held-out SRCC over scene and distortion folds of ``subset``."""
    criterion = {}
    for recipe in candidates:
        per_fold = [
            srcc for by in ('scene', 'distortion')
            for srcc in cross_validate(start, features, recipe, by, subset).fold_srcc.values()
        ]
        criterion[recipe] = float(np.mean(per_fold))
    return max(candidates, key=lambda r: (criterion[r], -candidates.index(r))), criterion


def nested_scene_cv(start: QualityHeads, features: Features, candidates: Sequence[Recipe]) -> tuple[CVResult, dict[str, Recipe]]:
    """Leave-one-scene-out estimate of the whole procedure: choose on the training scenes only."""
    predictions = np.full(len(features.badness), np.nan)
    result, chosen = CVResult({}, predictions), {}
    for name, train, test in folds(features, 'scene'):
        recipe, _ = select_recipe(start, features, candidates, subset=train)
        heads, _ = train_heads(start, features, train, recipe)
        with torch.no_grad():
            predictions[test] = scores(heads, features, test).numpy()
        result.fold_srcc[name] = _srcc(predictions[test], features.badness[test])
        chosen[name] = recipe
    return result, chosen


# --------------------------------------------------------------------------------------------
# shipping
# --------------------------------------------------------------------------------------------
def label_free_start(net: str, groups: Sequence[str]) -> QualityHeads:
    """The shipped label-free heads of a variant (start point of every recipe)."""
    return SPIPS(net, groups, pretrained_model_path=default_heads_path(net, groups, LABEL_FREE)).quality


@dataclass
class CVReport:
    """Everything cross-validation says about one variant (the tables print it)."""

    variant: str
    recipe: Recipe
    criterion: dict[Recipe, float]
    label_free: dict[str, CVResult]
    chosen: dict[str, CVResult]
    nested: CVResult
    nested_choices: dict[str, Recipe]

    @property
    def ships(self) -> bool:
        """Human-trained heads ship: chosen over label-free, and better on unseen scenes (nested)
        and on unseen distortion types."""
        return (self.recipe != UNTRAINED
                and self.nested.mean_srcc > self.label_free['scene'].mean_srcc
                and self.chosen['distortion'].mean_srcc > self.label_free['distortion'].mean_srcc)


def cross_validation_report(variant: str, features: Features) -> CVReport:
    """Choose a recipe for ``variant`` and cross-validate the choice (see the module docstring)."""
    net, groups = VARIANTS[variant]
    features = features.select_groups(groups)
    start = label_free_start(net, groups)
    candidates = candidate_recipes(groups)
    recipe, criterion = select_recipe(start, features, candidates)
    nested, choices = nested_scene_cv(start, features, candidates)
    return CVReport(
        variant, recipe, criterion,
        label_free={by: cross_validate(start, features, UNTRAINED, by) for by in ('scene', 'distortion')},
        chosen={by: cross_validate(start, features, recipe, by, curves=True) for by in ('scene', 'distortion')},
        nested=nested, nested_choices=choices,
    )


def build_human_heads(report: CVReport, features: Features) -> tuple[QualityHeads, dict]:
    """Train the report's recipe on all images; return the heads and their provenance ``meta``."""
    net, groups = VARIANTS[report.variant]
    features = features.select_groups(groups)
    heads, curve = train_heads(label_free_start(net, groups), features, range(len(features.badness)), report.recipe)
    meta = {
        'net': net, 'groups': list(groups), 'version': HUMAN_TRAINED,
        'provenance': (
            f'human-trained on live_dev (LIVE Release 2 subset: {len(features.badness)} images, '
            f'{len(set(features.scenes))} scenes, distortions {sorted(set(features.distortions))}, DMOS), '
            f'starting from the label-free v0.1 heads; recipe chosen by leave-one-scene/distortion-out '
            f'CV: {report.recipe.name}'
        ),
        'training': {
            'data': 'live_dev', 'n': len(features.badness), 'scenes': sorted(set(features.scenes)),
            'distortions': sorted(set(features.distortions)),
            'loss': 'pairwise Bradley-Terry (PairwisePreferenceLoss)', 'recipe': asdict(report.recipe),
            'final_loss': curve[-1]['loss'],
        },
        'cv': {
            'nested_scene_srcc': report.nested.fold_srcc,
            'held_out_predictions': dict(zip(features.names, map(float, report.nested.predictions))),
            'label_free_scene_srcc': report.label_free['scene'].fold_srcc,
            'distortion_srcc': report.chosen['distortion'].fold_srcc,
            'label_free_distortion_srcc': report.label_free['distortion'].fold_srcc,
            'nested_choices': {k: r.name for k, r in report.nested_choices.items()},
        },
    }
    return heads, meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa.recipes.human_heads', description=__doc__.split('\n')[0])
    parser.add_argument('--live-dev', type=Path, default=default_live_dev())
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args(argv)
    rows = read_live_dev(args.live_dev)
    cache: dict[str, Features] = {}
    for variant in args.variants:
        net, groups = VARIANTS[variant]
        if net not in cache:
            cache[net] = pooled_features(SPIPS(net).eval(), rows, args.live_dev, progress=f'features {net}')
        report = cross_validation_report(variant, cache[net])
        path = default_heads_path(net, groups, HUMAN_TRAINED)
        if not report.ships:
            path.unlink(missing_ok=True)
            print(f'{variant}: CV does not support human-trained heads; label-free v0.1 stays the default')
            continue
        heads, meta = build_human_heads(report, cache[net])
        save_heads(heads, path, meta)
        print(f'{variant}: wrote {path.name} ({meta["provenance"]})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
