r"""Human-trained SPIPS heads: learned from opinion scores, chosen the way leaderboards measure.

**Data.** LIVE Release 2 DMOS of ``live_dev`` (3 scenes x Gaussian blur, JPEG, white noise) and
``live_jpeg_dev`` (14 more scenes, JPEG), 121 images, 17 scenes
(:func:`~spips_pyiqa.data.live_dev.read_human_data`). Training needs one SPIPS pass per image
(:mod:`~spips_pyiqa.recipes.heads_features`: the heads are linear in the channel means of the
maps), so an epoch takes milliseconds and honest, repeated cross-validation is affordable.

**Training** (:func:`train_heads`): full-batch Adam on the pairwise Bradley-Terry loss of the pyiqa
training model (:mod:`spips_pyiqa.losses.mos_losses`), from the label-free heads, optionally

* over pairs of the same scene only (else all pairs, which also ask different scenes to share one
  scale),
* plus ``linear`` x pyiqa's ``plcc_loss`` (scores linear in DMOS: what plain PLCC rewards),
* plus :class:`~spips_pyiqa.losses.mos_losses.HeadsPrior` toward the label-free heads;

then every head weight is rescaled by one factor so the mean score on the training images is the
label-free heads' (SPIPS keeps its scale; fold models stay comparable).

**Protocol** (:class:`Protocol`, :mod:`spips_pyiqa.metrics.grouped_cv`): each candidate
(:func:`candidate_recipes`: the fusion weights alone, + the heads of one group, every head; each
over the whole prior range :data:`PRIOR_GRID`, 10 to 0, alike for every part; all pairs / + linear
term / same-scene pairs) gets out-of-fold predictions from grouped K-fold by scene (each test fold
holds several scenes), repeated over seeds, and from distortion folds (train without gblur, test on
gblur; the same for wnoise and jpeg). Scored as one data set: pooled SRCC and pyiqa's plain PLCC.
:func:`~spips_pyiqa.recipes.recipe_selection.choose` picks the winner (admissible: non-inferior to
label-free on the scene folds, no distortion fold losing beyond its own noise; among recipes within
one bootstrap standard error of the best, the most conservative). :func:`select` widens the prior
grid where the best lies on an open edge (:func:`grid_edge`) and refines it around the best.
:func:`nested_cv` estimates the whole procedure: for each outer fold the choice is made on its
training scenes alone. :func:`~spips_pyiqa.recipes.recipe_selection.ship_decision` then decides per
variant (non-inferiority of the nested estimate, a gain beyond the noise in at least one statistic).

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from spips_pyiqa.archs.checkpoint import save_heads
from spips_pyiqa.archs.quality_heads import QualityHeads
from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.data.live_dev import HUMAN_DATA, REPO_ROOT, default_human_data, read_human_data
from spips_pyiqa.metric_configs import HUMAN_TRAINED, LABEL_FREE, VARIANTS as METRIC_VARIANTS
from spips_pyiqa.metrics.grouped_cv import Pooled, grouped_folds, pooled
from spips_pyiqa.recipes.heads_features import Features, cached_features, scores
from spips_pyiqa.recipes.linear_heads import Batch, stacked_means, train_batch
from spips_pyiqa.recipes.recipe_selection import (LEVEL, Choice, Evaluation, Gain, choose, paired_gain, scene_strata,
                                                   ship_decision)

__all__ = [
    'FEATURE_CACHE',
    'PROTOCOL',
    'UNTRAINED',
    'VARIANTS',
    'CVReport',
    'Protocol',
    'Recipe',
    'build_human_heads',
    'candidate_recipes',
    'cross_validation_report',
    'evaluate',
    'nested_cv',
    'train_heads',
]

#: The variants this recipe makes heads for, with their backbone and groups (from the variants table).
VARIANTS = {name: (v.net, v.groups) for name, v in METRIC_VARIANTS.items() if v.human_trained}
#: Where ``make heads`` and the benchmark keep the pooled features (keyed, see heads_features).
FEATURE_CACHE = REPO_ROOT / 'benchmark_results' / 'cache' / 'features'


@dataclass(frozen=True)
class Recipe:
    r"""How heads learn: which parts, from which pairs, with which loss, how strongly held to their start.

    Attributes:
        learn: parts that learn: ``'fusion'`` and/or group names; empty: no training (label-free).
        within_scene: compare only images of the same scene.
        prior: strength :math:`\alpha` of :class:`~spips_pyiqa.losses.mos_losses.HeadsPrior`.
        linear: weight of pyiqa's ``plcc_loss`` (1 - Pearson) / 2 beside the pairwise loss.
        lr, epochs: full-batch Adam.
        temperature: :math:`\tau` of the pairwise loss, relative to the spread of the starting
            heads' scores on the training images.
    """

    learn: tuple[str, ...] = ()
    within_scene: bool = False
    prior: float = 0.0
    linear: float = 0.0
    lr: float = 0.05
    epochs: int = 100
    temperature: float = 0.5

    @property
    def name(self) -> str:
        if not self.learn:
            return 'label-free'
        pairs = 'scene pairs' if self.within_scene else 'all pairs'
        loss = f' + {self.linear:g} linear' if self.linear else ''
        return f'learn {"+".join(self.learn)}; {pairs}{loss}; prior {self.prior:g}'

    @property
    def conservative_rank(self) -> tuple:
        """Lower = more conservative: fewer parts learning, then a stronger prior, then the plain
        loss, then all pairs."""
        return len(self.learn), -self.prior, self.linear > 0, self.within_scene


UNTRAINED = Recipe()
#: The prior strengths every part is tried with, strongest first: from 10 (the heads barely move)
#: to 0 (no prior), half a decade apart. :func:`refine_grid` adds finer steps around the best and
#: :func:`extend_grid` widens a family whose best lies on an open edge.
PRIOR_GRID = (10.0, 3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.0)
#: The strongest prior tried: the grid's edge that needs no extension (0 is the other).
STRONGEST_PRIOR = PRIOR_GRID[0]


def candidate_recipes(groups: Sequence[str], priors: Sequence[float] = PRIOR_GRID) -> list[Recipe]:
    """The recipes cross-validation chooses from for a variant with ``groups``, label-free first:
    what learns (the fusion weights alone; + the heads of one group, for each group; every head),
    every one over the same ``priors``, from all pairs with and without the linear term; and the
    v0.2 recipe (fusion + traditional, same-scene pairs, no prior) for comparison."""
    parts = [('fusion',)] + [('fusion', g) for g in groups] + [('fusion', *groups)]
    recipes = [UNTRAINED]
    for learn in dict.fromkeys(parts):
        recipes += [Recipe(learn, prior=prior, linear=linear) for prior in priors for linear in (0.0, 1.0)]
    if 'traditional' in groups:
        recipes.append(Recipe(('fusion', 'traditional'), within_scene=True))
    return recipes


def _family(recipe: Recipe, candidates: Sequence[Recipe]) -> list[float]:
    """The priors tried for ``recipe``'s family (same parts, pairs and loss), ascending."""
    return sorted({r.prior for r in candidates if replace(r, prior=recipe.prior) == recipe})


def grid_edge(recipe: Recipe, candidates: Sequence[Recipe]) -> str | None:
    """``'weak'`` or ``'strong'`` where ``recipe``'s prior is the weakest or strongest its family
    tried and that edge is open (not 0, not :data:`STRONGEST_PRIOR`): the optimum may lie beyond the
    grid. ``None`` otherwise (and for label-free)."""
    if not recipe.learn:
        return None
    priors = _family(recipe, candidates)
    if recipe.prior == priors[0] and recipe.prior > 0:
        return 'weak'
    if recipe.prior == priors[-1] and recipe.prior < STRONGEST_PRIOR:
        return 'strong'
    return None


def extend_grid(recipe: Recipe, candidates: Sequence[Recipe]) -> list[Recipe]:
    """Recipes of ``recipe``'s family beyond its open grid edge (:func:`grid_edge`): half a decade
    further and the closing edge (0, or :data:`STRONGEST_PRIOR`); none when the edge is closed."""
    edge = grid_edge(recipe, candidates)
    if edge is None:
        return []
    further = [recipe.prior / 10 ** 0.5, 0.0] if edge == 'weak' else [min(recipe.prior * 10 ** 0.5, STRONGEST_PRIOR),
                                                                    STRONGEST_PRIOR]
    return [replace(recipe, prior=p) for p in dict.fromkeys(further) if replace(recipe, prior=p) not in candidates]


def refine_grid(recipe: Recipe, candidates: Sequence[Recipe]) -> list[Recipe]:
    """Recipes of ``recipe``'s family between its prior and each neighbour on the grid (geometric
    midpoint; a quarter of the way in log scale toward 0, i.e. the prior / 10^0.25): a finer grid where the
    criterion peaks."""
    if not recipe.learn:
        return []
    priors = _family(recipe, candidates)
    k = priors.index(recipe.prior)
    between = [float(np.sqrt(recipe.prior * q)) if q > 0 and recipe.prior > 0 else max(recipe.prior, q) / 10 ** 0.25
               for q in priors[max(k - 1, 0):k] + priors[k + 1:k + 2]]
    finer = [replace(recipe, prior=float(f'{p:.3g}')) for p in between]
    return [r for r in finer if r not in candidates]


@dataclass(frozen=True)
class Protocol:
    """Folds, seeds and bootstrap of the cross-validation.

    Attributes:
        folds, seeds: grouped K-fold by scene, repeated once per seed (the scene estimate).
        inner_folds, inner_seeds: the same inside each outer fold of :func:`nested_cv`.
        nested_seed: the outer folds of :func:`nested_cv`.
        samples, level: bootstrap over scenes of :func:`~spips_pyiqa.recipes.recipe_selection.choose`
            (one-SE rule, distortion folds) and level of every interval.
        ship_samples: resamples of the ship rule's paired bootstrap
            (:func:`~spips_pyiqa.recipes.recipe_selection.paired_gain` of the nested predictions):
            one call, so many, that the decision never hinges on the Monte Carlo error of a 5%
            quantile (50 resamples in the tail at 1000).
    """

    folds: int = 5
    seeds: tuple[int, ...] = (0, 1)
    inner_folds: int = 3
    inner_seeds: tuple[int, ...] = (0,)
    nested_seed: int = 0
    samples: int = 1000
    level: float = LEVEL
    ship_samples: int = 20000


PROTOCOL = Protocol()


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def _batch(recipes: Sequence[Recipe], train: np.ndarray) -> Batch:
    """The recipes as one :class:`~spips_pyiqa.recipes.linear_heads.Batch` (those that learn must
    share lr, epochs and temperature; label-free ones learn nothing and go along)."""
    learning = [r for r in recipes if r.learn] or list(recipes)
    first = learning[0]
    if any((r.lr, r.epochs, r.temperature) != (first.lr, first.epochs, first.temperature) for r in learning):
        raise ValueError('recipes trained together must share lr, epochs and temperature')
    return Batch(train, [r.learn for r in recipes], [r.within_scene for r in recipes], [r.prior for r in recipes],
                 [r.linear for r in recipes], first.temperature, first.lr, first.epochs)


def _masks(index_sets: Sequence[Sequence[int]], n: int) -> np.ndarray:
    mask = np.zeros((len(index_sets), n), dtype=bool)
    for row, index in enumerate(index_sets):
        mask[row, list(index)] = True
    return mask


def train_heads(
    start: QualityHeads,
    features: Features,
    index: Sequence[int],
    recipe: Recipe,
    monitor: Sequence[int] | None = None,
) -> tuple[QualityHeads, list[dict[str, float]]]:
    """Train a copy of ``start`` on the images ``index``; return it and the per-epoch curve.

    Trained in the linear form of :func:`~spips_pyiqa.recipes.linear_heads.train_batch`, then
    written into a copy of ``start`` with every head weight rescaled by one factor so that the mean
    score on ``index`` is the starting heads' (one global factor: no ranking or correlation
    changes; SPIPS keeps its range, and models of different folds stay comparable). The curve has
    the training loss and, when ``monitor`` (held-out images) is given, their SRCC.
    """
    heads = copy.deepcopy(start)
    if not recipe.learn:
        return heads, []
    n = len(features.badness)
    x = stacked_means(features.means, list(heads.heads))
    held = _masks([monitor], n) if monitor is not None else None
    model, factors, curve = train_batch(start, x, features.badness, features.scenes,
                                        _batch([recipe], _masks([index], n)), held)
    model.write(heads, 0, float(factors[0]))
    return heads, [{k: (v if k == 'epoch' else float(v[0])) for k, v in point.items()} for point in curve]


# --------------------------------------------------------------------------------------------
# out-of-fold predictions
# --------------------------------------------------------------------------------------------
def distortion_folds(features: Features, subset: Sequence[int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(held-out type, train, test)`` leaving one distortion type of ``subset`` out (none when
    ``subset`` has a single type)."""
    subset = np.asarray(list(subset), dtype=int)
    kinds = np.asarray(features.distortions)[subset]
    if len(set(kinds)) < 2:
        return []
    return [(str(k), subset[kinds != k], subset[kinds == k]) for k in sorted(set(kinds))]


def evaluate(start: QualityHeads, features: Features, recipes: Sequence[Recipe], subset: Sequence[int] | None = None,
             folds: int = PROTOCOL.folds, seeds: Sequence[int] = PROTOCOL.seeds, curves: bool = False) -> list[Evaluation]:
    """Out-of-fold predictions of each recipe on ``subset`` (default all): grouped ``folds``-fold
    by scene once per seed, and every distortion fold, all models trained in one batch.
    ``curves``: record each scene fold's training curve with its held-out SRCC (first seed)."""
    n = len(features.badness)
    subset = np.arange(n) if subset is None else np.asarray(list(subset), dtype=int)
    k = min(folds, len({features.scenes[i] for i in subset}))
    splits = [(row, f, np.setdiff1d(subset, test), test)
              for row, seed in enumerate(seeds) for f, test in enumerate(grouped_folds(features.scenes, k, seed, subset))]
    splits += [(None, kind, train, test) for kind, train, test in distortion_folds(features, subset)]
    jobs = [(recipe, split) for recipe in recipes for split in splits]
    x = stacked_means(features.means, list(start.heads))
    test_mask = _masks([split[3] for _, split in jobs], n)
    model, factors, curve = train_batch(start, x, features.badness, features.scenes,
                                        _batch([r for r, _ in jobs], _masks([split[2] for _, split in jobs], n)),
                                        test_mask if curves else None)
    with torch.no_grad():
        predictions = (model(x) * factors[:, None]).numpy().astype(np.float64)
    out = {r: Evaluation(r, subset, np.full((len(seeds), n), np.nan), {}) for r in recipes}
    for row, (recipe, (seed_row, fold, _, test)) in enumerate(jobs):
        evaluation = out[recipe]
        if seed_row is not None:
            evaluation.scene[seed_row, test] = predictions[row, test]
            if curves and seed_row == 0:
                evaluation.curves[f'fold {fold + 1}'] = [
                    {'epoch': p['epoch'], 'loss': float(p['loss'][row]), 'held-out SRCC': float(p['held-out SRCC'][row])}
                    for p in curve]
        else:
            evaluation.distortion[fold] = np.where(test_mask[row], predictions[row], np.nan)
    return [out[r] for r in recipes]


def select(start: QualityHeads, features: Features, candidates: Sequence[Recipe], subset: Sequence[int] | None = None,
           protocol: Protocol = PROTOCOL, inner: bool = False) -> tuple[Choice, list[Evaluation]]:
    """Evaluate every candidate on ``subset`` and let :func:`~spips_pyiqa.recipes.recipe_selection.choose`
    decide; ``inner``: with the inner folds and seeds of ``protocol``.

    Where the best recipe's prior lies on an open edge of its family's grid, the grid is extended
    (:func:`extend_grid`, until the edge closes); then the grid is refined around the best
    (:func:`refine_grid`), and the choice is made among all recipes tried.
    """
    folds, seeds = (protocol.inner_folds, protocol.inner_seeds) if inner else (protocol.folds, protocol.seeds)

    def decide(more: Sequence[Recipe], done: list[Evaluation]) -> tuple[Choice, list[Evaluation]]:
        done = done + evaluate(start, features, more, subset, folds, seeds)
        return choose(done, features.badness, features.scenes, features.distortions, protocol.samples,
                      protocol.level), done

    choice, evaluations = decide(candidates, [])
    while extra := extend_grid(choice.best, [e.recipe for e in evaluations]):
        choice, evaluations = decide(extra, evaluations)
    if extra := refine_grid(choice.best, [e.recipe for e in evaluations]):
        choice, evaluations = decide(extra, evaluations)
    return choice, evaluations


def nested_cv(start: QualityHeads, features: Features, candidates: Sequence[Recipe],
              protocol: Protocol = PROTOCOL, say=lambda line: None) -> tuple[np.ndarray, dict[str, Recipe]]:
    """Held-out predictions of the whole procedure: grouped scene folds; in each, the recipe is
    chosen (:func:`select`, inner folds) on the training scenes alone, trained on them and scores
    the held-out scenes. Returns the predictions :math:`(N,)` and the choice of each outer fold."""
    prediction, choices = np.full(len(features.badness), np.nan), {}
    for k, test in enumerate(grouped_folds(features.scenes, protocol.folds, protocol.nested_seed)):
        train = np.setdiff1d(np.arange(len(features.badness)), test)
        choice, _ = select(start, features, candidates, train, protocol, inner=True)
        heads, _ = train_heads(start, features, train, choice.chosen)
        with torch.no_grad():
            prediction[test] = scores(heads, features, test).numpy()
        choices[', '.join(sorted({features.scenes[i] for i in test}))] = choice.chosen
        say(f'  nested fold {k + 1}/{protocol.folds}: chose {choice.chosen.name}')
    return prediction, choices


# --------------------------------------------------------------------------------------------
# the report and the shipped heads
# --------------------------------------------------------------------------------------------
def label_free_start(net: str, groups: Sequence[str]) -> QualityHeads:
    """The shipped label-free heads of a variant (start point of every recipe)."""
    return SPIPS(net, groups, pretrained_model_path=default_heads_path(net, groups, LABEL_FREE)).quality


@dataclass
class CVReport:
    """Everything cross-validation says about one variant (the tables print it).

    Attributes:
        choice: the protocol's choice on all 17 scenes (:class:`~spips_pyiqa.recipes.recipe_selection.Choice`).
        evaluations: per candidate, its out-of-fold predictions.
        label_free_scores: the label-free heads' score of every image :math:`(N,)`.
        nested: the nested procedure's held-out predictions :math:`(N,)`; nested_choices per outer fold.
        gain: :func:`~spips_pyiqa.recipes.recipe_selection.paired_gain` of ``nested`` over the
            label-free scores (what the ship rule reads).
        curves: the chosen recipe's training curves on the scene folds of the first seed.
    """

    variant: str
    choice: Choice
    evaluations: list[Evaluation]
    label_free_scores: np.ndarray
    nested: np.ndarray
    nested_choices: dict[str, Recipe]
    badness: np.ndarray
    curves: dict[str, list[dict[str, float]]]
    gain: dict[str, Gain]

    @property
    def recipe(self) -> Recipe:
        return self.choice.chosen

    @property
    def nested_pooled(self) -> Pooled:
        return pooled(self.nested, self.badness)

    @property
    def label_free_pooled(self) -> Pooled:
        return pooled(self.label_free_scores, self.badness)

    @property
    def decision(self) -> tuple[bool, str]:
        """:func:`~spips_pyiqa.recipes.recipe_selection.ship_decision` for the chosen recipe
        (never ships when label-free is chosen)."""
        if self.recipe == UNTRAINED:
            return False, 'label-free stays: the protocol chose the label-free heads'
        return ship_decision(self.gain, self.choice.fold_gains[self.recipe])

    @property
    def ships(self) -> bool:
        return self.decision[0]


def cross_validation_report(variant: str, features: Features, protocol: Protocol = PROTOCOL,
                            say=lambda line: None) -> CVReport:
    """Choose a recipe for ``variant`` and estimate the procedure (see the module docstring);
    ``say`` gets a line per step."""
    net, groups = VARIANTS[variant]
    features = features.select_groups(groups)
    start = label_free_start(net, groups)
    candidates = candidate_recipes(groups)
    choice, evaluations = select(start, features, candidates, protocol=protocol)
    say(f'{variant}: {len(evaluations)} candidates evaluated; best {choice.best.name}; chosen {choice.chosen.name}')
    nested, nested_choices = nested_cv(start, features, candidates, protocol, say)
    with torch.no_grad():
        label_free_scores = scores(start, features, range(len(features.badness))).numpy()
    curves = (evaluate(start, features, [choice.chosen], None, protocol.folds, protocol.seeds[:1], curves=True)[0].curves
              if choice.chosen.learn else {})
    gain, = paired_gain(nested, label_free_scores, features.badness, features.scenes,
                        scene_strata(features.scenes, features.distortions), samples=protocol.ship_samples,
                        level=protocol.level)
    return CVReport(variant, choice, evaluations, label_free_scores, nested, nested_choices, features.badness, curves,
                    gain)


def build_human_heads(report: CVReport, features: Features, protocol: Protocol = PROTOCOL) -> tuple[QualityHeads, dict]:
    """Train the report's recipe on all images; return the heads and their provenance ``meta``."""
    net, groups = VARIANTS[report.variant]
    features = features.select_groups(groups)
    heads, curve = train_heads(label_free_start(net, groups), features, range(len(features.badness)), report.recipe)
    chosen = report.choice.summaries[report.recipe]
    scenes, kinds = sorted(set(features.scenes)), sorted(set(features.distortions))
    meta = {
        'net': net, 'groups': list(groups), 'version': HUMAN_TRAINED,
        'provenance': (
            f'human-trained on {" + ".join(HUMAN_DATA)} (LIVE Release 2 subsets: {len(features.badness)} images, '
            f'{len(scenes)} scenes, distortions {kinds}, DMOS), starting from the label-free v{LABEL_FREE} heads; '
            f'recipe chosen by grouped {protocol.folds}-fold scene CV x {len(protocol.seeds)} seeds and distortion '
            f'folds (pooled SRCC and plain PLCC; one-standard-error rule, bootstrap over scenes): {report.recipe.name}'
        ),
        'training': {
            'data': list(HUMAN_DATA), 'n': len(features.badness), 'scenes': scenes, 'distortions': kinds,
            'loss': 'pairwise Bradley-Terry (PairwisePreferenceLoss)'
                    + (f' + {report.recipe.linear:g} x pyiqa plcc_loss' if report.recipe.linear else ''),
            'recipe': asdict(report.recipe), 'final_loss': curve[-1]['loss'], 'protocol': asdict(protocol),
        },
        'cv': {
            'nested_pooled': asdict(report.nested_pooled),
            'label_free_pooled': asdict(report.label_free_pooled),
            'nested_gain': {statistic: asdict(g) for statistic, g in report.gain.items()},
            'scene_folds_pooled': asdict(chosen.scene),
            'distortion_folds': {k: asdict(p) for k, p in chosen.distortion.items()},
            'label_free_distortion_folds': {k: asdict(p) for k, p in report.choice.summaries[UNTRAINED].distortion.items()},
            'distortion_fold_gains': {k: {statistic: asdict(g) for statistic, g in gains.items()}
                                      for k, gains in report.choice.fold_gains[report.recipe].items()},
            'held_out_predictions': dict(zip(features.names, map(float, report.nested))),
            'nested_choices': {k: r.name for k, r in report.nested_choices.items()},
            'decision': report.decision[1],
        },
    }
    return heads, meta


def summary_line(report: CVReport) -> str:
    """One line per variant: the choice, the nested estimate against label-free, the decision."""
    n, lf = report.nested_pooled, report.label_free_pooled
    return (f'{report.variant}: chosen {report.recipe.name}; nested pooled SRCC {n.srcc:.3f} (label-free '
            f'{lf.srcc:.3f}), plain PLCC {n.plcc:.3f} ({lf.plcc:.3f}); {report.decision[1]}')


def reports(variants: Sequence[str], roots: Sequence[Path] | None = None, cache: Path | None = FEATURE_CACHE,
            protocol: Protocol = PROTOCOL, say=print) -> tuple[list[CVReport], dict[str, Features]]:
    """:func:`cross_validation_report` of each variant on the human data (features per backbone,
    through the cache)."""
    root, rows = read_human_data(roots)
    features: dict[str, Features] = {}
    out = []
    for variant in variants:
        net = VARIANTS[variant][0]
        if net not in features:
            features[net] = cached_features(net, rows, root, cache, progress=f'features {net}')
        out.append(cross_validation_report(variant, features[net], protocol, say))
        say(summary_line(out[-1]))
    return out, features


def write_shipped_heads(report: CVReport, features: Features) -> str:
    """Write (or, where the ship rule refuses, remove) the v``HUMAN_TRAINED`` heads of a variant.

    Earlier versions' files are left alone: a refused variant keeps the default the variants table
    names for it (an earlier human-trained version that shipped under its own rule, or label-free).
    """
    net, groups = VARIANTS[report.variant]
    path = default_heads_path(net, groups, HUMAN_TRAINED)
    if not report.ships:
        path.unlink(missing_ok=True)
        kept = METRIC_VARIANTS[report.variant].heads
        kept = LABEL_FREE if kept == HUMAN_TRAINED else kept
        return f'{report.variant}: {report.decision[1]}; no v{HUMAN_TRAINED} heads, its default stays v{kept}'
    heads, meta = build_human_heads(report, features)
    save_heads(heads, path, meta)
    return f'{report.variant}: wrote {path.name} ({meta["provenance"]})'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m spips_pyiqa.recipes.human_heads', description=__doc__.split('\n')[0])
    parser.add_argument('--data', type=Path, nargs='+', default=default_human_data(),
                        help=f'human-scored folders, each with scores.csv (default: {", ".join(HUMAN_DATA)} in ../shared/data)')
    parser.add_argument('--variants', nargs='+', default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument('--cache', type=Path, default=FEATURE_CACHE, help='pooled-feature cache (default: %(default)s)')
    args = parser.parse_args(argv)
    found, features = reports(args.variants, args.data, args.cache)
    for report in found:
        print(write_shipped_heads(report, features[VARIANTS[report.variant][0]]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
