"""Human-trained heads: the pooled-feature identity, the batched linear training, the leaderboard
protocol (grouped scene folds, plain PLCC, bootstrap choice, ship rule, nested estimate), the
feature cache, and the shipped heads' consistency with their registered names and provenance."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

import pyiqa
from pyiqa.losses.iqa_losses import plcc_loss
from pyiqa.metrics import calculate_plcc
from spips_pyiqa.archs.backbone_layout import CPU_CONVOLUTIONS_ENV
from spips_pyiqa.archs.groups import GROUPS
from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.cli.prepare_mos import cli as prepare_mos
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.mos_prepare import MosDataError, MosRow, read_mos_folders
from spips_pyiqa.losses.mos_losses import HeadsPrior, pairwise_preference_loss
from spips_pyiqa.metric_configs import HUMAN_TRAINED, HUMAN_TRAINED_V03, LABEL_FREE, SPIPS_METRIC_CONFIGS
from spips_pyiqa.metrics.correlation import correlations
from spips_pyiqa.metrics.grouped_cv import Pooled, bootstrap_correlations, grouped_folds, pooled, scene_bootstrap
from spips_pyiqa.recipes import heads_features as hf
from spips_pyiqa.recipes import human_heads as hh
from spips_pyiqa.recipes import recipe_selection as rs
from spips_pyiqa.recipes.linear_heads import Batch, LinearHeads, stacked_means, train_batch

SCENES = ('astronaut', 'coffee', 'chelsea', 'rocket')
KINDS = ('noise', 'blur', 'jpeg')
SMALL = hh.Protocol(folds=2, seeds=(0,), inner_folds=2, inner_seeds=(0,), samples=50)


def _save(tensor, path):
    Image.fromarray((tensor[0].permute(1, 2, 0).numpy() * 255).round().astype('uint8')).save(path)


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """4 scenes x 3 distortion types x 2 severities at 64-88 px, DMOS-like badness = severity."""
    root = tmp_path_factory.mktemp('tiny')
    rows = []
    for s, scene in enumerate(SCENES):
        ref = photo(scene, 64 + 8 * s)
        _save(ref, root / f'{scene}.png')
        for kind in KINDS:
            for severity in (1, 3):
                name = f'{scene}_{kind}{severity}.png'
                _save(distort(ref, kind, severity), root / name)
                rows.append(MosRow(f'{scene}.png', name, severity + 0.1 * s, f'{scene}.png', kind))
    net = SPIPS('alex', heads_version=LABEL_FREE).eval()
    return root, rows, net, hf.pooled_features(net, rows, root)


def test_scores_from_pooled_features_are_spips_on_the_full_images(tiny):
    root, rows, net, features = tiny
    with torch.no_grad():
        direct = torch.cat([net(load_image(root / r.dist), load_image(root / r.ref)) for r in rows]).reshape(-1)
        pooled_scores = hf.scores(net.quality, features, range(len(rows)))
        linear = LinearHeads(net.quality)(stacked_means(features.means, GROUPS))[0]
    torch.testing.assert_close(pooled_scores, direct, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(linear, direct, rtol=1e-5, atol=1e-6)
    ablation = SPIPS('alex', ('perceptual', 'semantic'), heads_version=LABEL_FREE).eval()
    with torch.no_grad():
        direct = ablation(load_image(root / rows[0].dist), load_image(root / rows[0].ref)).reshape(-1)
        pooled_scores = hf.scores(ablation.quality, features.select_groups(ablation.groups), [0])
    torch.testing.assert_close(pooled_scores, direct, rtol=1e-5, atol=1e-6)


def test_training_learns_only_the_named_parts_keeps_weights_non_negative_and_lowers_the_loss(tiny):
    _, rows, net, features = tiny
    start = net.quality
    before = copy.deepcopy(start.state_dict())
    untouched, curve = hh.train_heads(start, features, range(len(rows)), hh.UNTRAINED)
    assert curve == [] and all(torch.equal(a, b) for a, b in zip(untouched.state_dict().values(), before.values()))
    recipe = hh.Recipe(learn=('fusion', 'traditional'), epochs=30)
    trained, curve = hh.train_heads(start, features, range(12), recipe, monitor=range(12, 18))
    assert len(curve) == 31 and curve[-1]['loss'] < curve[0]['loss'] and 'held-out SRCC' in curve[-1]
    after = trained.state_dict()
    factors = {k: after[k] / before[k] for k in after if k.startswith('heads.') and 'traditional' not in k}
    factor = next(iter(factors.values())).flatten()[0]
    for key, ratio in factors.items():  # frozen heads move only by the one common scale factor
        torch.testing.assert_close(ratio[before[key] != 0], torch.full_like(ratio[before[key] != 0], factor))
    assert factor != 1 and not torch.equal(after['fusion.logits'], before['fusion.logits'])
    assert not torch.allclose(after['heads.traditional.convs.0.weight'] / factor, before['heads.traditional.convs.0.weight'])
    assert (after['heads.traditional.convs.0.weight'] >= 0).all()
    with torch.no_grad():  # one global factor keeps the starting heads' mean score on the training images
        torch.testing.assert_close(hf.scores(trained, features, range(12)).mean(), hf.scores(start, features, range(12)).mean())
    assert all(torch.equal(start.state_dict()[k], v) for k, v in before.items())


def test_batched_training_equals_each_model_trained_alone_and_its_losses_are_the_documented_ones(tiny):
    _, rows, net, features = tiny
    n, x = len(rows), stacked_means(features.means, GROUPS)
    recipes = [hh.Recipe(('fusion', 'traditional'), epochs=15), hh.Recipe(('fusion', *GROUPS), prior=1.0, linear=1.0, epochs=15),
               hh.Recipe(('fusion',), within_scene=True, epochs=15)]
    subsets = [range(0, 12), range(6, 24), range(3, 18)]
    train = np.zeros((3, n), bool)
    for row, index in enumerate(subsets):
        train[row, list(index)] = True
    batch = Batch(train, [r.learn for r in recipes], [r.within_scene for r in recipes], [r.prior for r in recipes],
                  [r.linear for r in recipes], epochs=15)
    model, factors, curve = train_batch(net.quality, x, features.badness, features.scenes, batch)
    for row, (recipe, index) in enumerate(zip(recipes, subsets)):
        alone, _ = hh.train_heads(net.quality, features, index, recipe)
        together = model.write(copy.deepcopy(net.quality), row, float(factors[row]))
        for key, value in alone.state_dict().items():
            torch.testing.assert_close(together.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    # epoch-0 loss of model 1: pyiqa's pairwise loss + plcc_loss, and LinearHeads.prior == HeadsPrior
    index = list(subsets[1])
    start_scores = hf.scores(net.quality, features, index).detach()
    target = torch.as_tensor(features.badness[index], dtype=torch.float32)
    expected = pairwise_preference_loss(start_scores, target, 0.5 * start_scores.std()) + plcc_loss(start_scores[:, None], target[:, None])
    assert curve[0]['loss'][1] == pytest.approx(float(expected), rel=1e-4)
    moved = copy.deepcopy(net.quality)
    with torch.no_grad():
        moved.heads['perceptual'].convs[1].weight.mul_(1.7)
        moved.fusion.logits.add_(torch.tensor([0.3, -0.2, 0.1]))
    prior = HeadsPrior(net.quality, 2.0)(moved)
    assert float(2.0 * LinearHeads(moved).prior(LinearHeads(net.quality))[0].detach()) == pytest.approx(float(prior), rel=1e-5)


def test_grouped_folds_never_split_a_scene_and_hold_several_scenes():
    scenes = [f's{i % 17}' for i in range(121)]
    for seed in (0, 1, 2):
        folds = grouped_folds(scenes, 5, seed)
        assert sorted(np.concatenate(folds).tolist()) == list(range(121))
        held = [{scenes[i] for i in fold} for fold in folds]
        for a in range(5):
            assert len(held[a]) in (3, 4)
            for b in range(a + 1, 5):
                assert not held[a] & held[b]
    assert [f.tolist() for f in grouped_folds(scenes, 5, 0)] != [f.tolist() for f in grouped_folds(scenes, 5, 1)]
    subset = [i for i in range(121) if scenes[i] not in ('s0', 's1')]
    assert set(np.concatenate(grouped_folds(scenes, 4, 0, subset)).tolist()) == set(subset)
    with pytest.raises(ValueError, match='groups'):
        grouped_folds(scenes, 18, 0)


def test_plain_plcc_is_pyiqas_calculate_plcc_and_differs_from_the_fitted_one():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 60)
    y = np.exp(4 * x) + rng.normal(0, 1, 60)  # monotone but bent: plain PLCC < fitted PLCC
    c, p = correlations(x, y), pooled(x, y)
    assert c.plain_plcc == float(calculate_plcc(x, y)) == p.plcc
    assert p.plcc_fit == c.plcc and p.plcc < p.plcc_fit - 0.02
    draws = scene_bootstrap([str(i % 6) for i in range(60)], range(60), 3, 0)
    values = bootstrap_correlations(np.stack([x, -x]), y, draws)
    for b, index in enumerate(draws):
        assert values[b, 0, 1] == pytest.approx(calculate_plcc(x[index], y[index]))
        assert values[b, 0, 0] == pytest.approx(correlations(x[index], y[index]).srcc)
        assert values[b, 1, 0] == pytest.approx(-values[b, 0, 0])


def test_stratified_scene_bootstrap_keeps_each_strata_size_and_whole_scenes():
    scenes = [f's{i // 4}' for i in range(40)]  # 10 scenes of 4 items
    distortions = ['blur' if i < 12 else 'jpeg' for i in range(40)]  # scenes 0-2 have blur
    strata = rs.scene_strata(scenes, distortions)
    assert strata[0] == 'blur' and strata[-1] == 'jpeg'
    for draw in scene_bootstrap(scenes, range(40), 30, 0, strata):
        drawn = [scenes[i] for i in draw[::4]]
        assert sum(s in ('s0', 's1', 's2') for s in drawn) == 3 and len(drawn) == 10
        assert all(scenes[i] == scenes[draw[4 * k]] for k in range(10) for i in draw[4 * k:4 * k + 4])
    plain = scene_bootstrap(scenes, range(40), 200, 0)
    assert any(sum(scenes[i] in ('s0', 's1', 's2') for i in draw[::4]) != 3 for draw in plain)


def _evaluation(recipe, scene, distortion=None):
    return rs.Evaluation(recipe, np.arange(scene.shape[-1]), np.atleast_2d(scene), distortion or {})


def _gain(prediction, reference, badness, scenes, samples=300):
    return rs.paired_gain(prediction, reference, badness, scenes, ['x'] * len(badness), samples=samples)[0]


def test_choice_and_ship_rule_refuse_a_recipe_that_wins_srcc_but_loses_plain_plcc():
    rng = np.random.default_rng(1)
    scenes = [f's{i // 6}' for i in range(60)]
    badness = rng.uniform(0, 10, 60)
    linear = badness + rng.normal(0, 2.0, 60)  # label-free: noisy but linear in DMOS
    bent = np.exp(badness)  # perfect ranks, bent scale
    lf, bends = hh.UNTRAINED, hh.Recipe(('fusion',))
    evaluations = [_evaluation(lf, linear), _evaluation(bends, bent)]
    s = {e.recipe: rs.summarise(e, badness) for e in evaluations}
    assert s[bends].scene.srcc > s[lf].scene.srcc and s[bends].scene.plcc < s[lf].scene.plcc
    choice = rs.choose(evaluations, badness, scenes, ['x'] * 60, samples=100)
    assert not choice.admissible[bends] and choice.chosen == lf
    ships, reason = rs.ship_decision(_gain(bent, linear, badness, scenes), {})
    assert not ships and 'plain PLCC gain may be a loss' in reason and 'SRCC gain' not in reason


def test_ship_rule_ships_a_clear_plain_plcc_gain_with_srcc_unchanged_and_refuses_an_srcc_loss_beyond_the_margin():
    rng = np.random.default_rng(3)
    scenes = [f's{i // 6}' for i in range(60)]
    badness = rng.uniform(0, 10, 60)
    label_free = np.exp(badness / 2 + rng.normal(0, 0.4, 60))  # bent against DMOS
    straightened = np.log(label_free) * 2  # the same ranks, linear in DMOS: SRCC unchanged, plain PLCC up
    gain = _gain(straightened, label_free, badness, scenes)
    assert gain['srcc'].estimate == gain['srcc'].low == 0 and gain['plcc'].low > 0.05
    ships, reason = rs.ship_decision(gain, {})
    assert ships, reason
    # the 0.3 rule (a gain beyond the noise in both) refused this: SRCC did not move
    assert not gain['srcc'].low > 0
    # ranks scrambled on some scenes: plain PLCC still gains, SRCC loses beyond the margin
    worse = straightened.copy()
    worse[:18] = rng.permutation(worse[:18])
    gain = _gain(worse, label_free, badness, scenes)
    assert gain['srcc'].estimate < -rs.NONINFERIORITY_MARGIN
    ships, reason = rs.ship_decision(gain, {})
    assert not ships and 'SRCC gain may be a loss beyond' in reason
    # no gain beyond the noise in either: refused
    tiny = label_free.copy()
    tiny[:2] = np.exp(badness[:2] / 2)
    ships, reason = rs.ship_decision(_gain(tiny, label_free, badness, scenes), {})
    assert not ships and 'no gain beyond the noise' in reason
    # a distortion fold that loses beyond its noise blocks shipping too
    fold = {'blur': {'srcc': rs.Gain(-0.2, -0.3, -0.1), 'plcc': rs.Gain(0.0, -0.1, 0.1)}}
    ships, reason = rs.ship_decision(_gain(straightened, label_free, badness, scenes), fold)
    assert not ships and 'distortion fold blur' in reason


def test_a_distortion_fold_refuses_a_recipe_only_where_it_loses_beyond_its_own_noise():
    rng = np.random.default_rng(4)
    scenes = [f's{i // 6}' for i in range(60)]
    kinds = ['blur' if i < 18 else 'jpeg' for i in range(60)]  # 3 scenes with blur, 10 with jpeg only
    badness = rng.uniform(0, 10, 60)
    base = badness + rng.normal(0, 1.0, 60)
    blur = np.arange(18)

    def fold(values):
        prediction = np.full(60, np.nan)
        prediction[blur] = values
        return {'blur': prediction}

    one_pair = base[blur].copy()  # one pair of one scene swapped: a small loss, inside the fold's noise
    order = np.argsort(badness[:6])
    one_pair[order[2]], one_pair[order[3]] = one_pair[order[3]], one_pair[order[2]]
    reversed_ = -base[blur]  # the blurred images ranked backwards: a loss far beyond the noise
    lf, small, large = hh.UNTRAINED, hh.Recipe(('fusion',), prior=1.0), hh.Recipe(('fusion', *GROUPS), prior=0.1)
    better = badness + rng.normal(0, 0.5, 60)  # both beat label-free on the scene folds
    evaluations = [_evaluation(lf, base, fold(base[blur])), _evaluation(small, better, fold(one_pair)),
                   _evaluation(large, better, fold(reversed_))]
    choice = rs.choose(evaluations, badness, scenes, kinds, samples=300)
    loss = choice.summaries[lf].distortion['blur'].srcc - choice.summaries[small].distortion['blur'].srcc
    assert loss > 0.01  # the fixed margin of the 0.3 rule refused this one
    assert choice.fold_gains[small]['blur']['srcc'].high >= 0 and choice.admissible[small]
    assert choice.fold_gains[large]['blur']['srcc'].high < 0 and not choice.admissible[large]
    assert choice.chosen == small


def test_one_standard_error_rule_learns_where_the_95_percent_interval_rule_keeps_label_free():
    rng = np.random.default_rng(7)
    scenes = [f's{i // 6}' for i in range(60)]
    badness = rng.uniform(0, 10, 60)
    base = badness + rng.normal(0, 2.2, 60)
    learned = badness + rng.normal(0, 1.6, 60)  # better: beyond one SE, within the 95% interval
    lf, fusion = hh.UNTRAINED, hh.Recipe(('fusion',), prior=1.0)
    evaluations = [_evaluation(lf, base), _evaluation(fusion, learned)]
    choice = rs.choose(evaluations, badness, scenes, ['x'] * 60, samples=500)
    assert choice.best == fusion and choice.chosen == fusion and not choice.within[lf]
    values = bootstrap_correlations(learned[None], badness, scene_bootstrap(scenes, range(60), 500, 0, ['x'] * 60))
    low = np.quantile(values.mean(axis=(1, 2)), 0.025)
    assert rs.criterion(choice.summaries[lf]) >= low  # the 95%-interval rule calls them tied: label-free


def test_within_one_standard_error_the_more_conservative_recipe_wins():
    rng = np.random.default_rng(2)
    scenes = [f's{i // 6}' for i in range(60)]
    badness = rng.uniform(0, 10, 60)
    base = badness + rng.normal(0, 3.0, 60)
    slightly = base.copy()  # better on one scene of ten only: within one SE of base
    slightly[:6] = badness[:6]
    much = badness + rng.normal(0, 0.3, 60)  # far better
    lf, fusion, heads = hh.UNTRAINED, hh.Recipe(('fusion',), prior=1.0), hh.Recipe(('fusion', *GROUPS), prior=0.1)
    choice = rs.choose([_evaluation(lf, base), _evaluation(heads, slightly)], badness, scenes, ['x'] * 60, samples=200)
    assert choice.best == heads and choice.within[lf] and choice.chosen == lf
    choice = rs.choose([_evaluation(lf, base), _evaluation(fusion, slightly), _evaluation(heads, much)],
                       badness, scenes, ['x'] * 60, samples=200)
    assert choice.best == heads and not choice.within[lf] and choice.chosen == heads
    assert fusion.conservative_rank < heads.conservative_rank and lf.conservative_rank < fusion.conservative_rank


def test_a_grid_edge_optimum_is_flagged_and_the_grid_extended_until_it_is_not(tiny):
    _, rows, net, features = tiny
    family = [hh.Recipe(('fusion',), prior=p, epochs=20) for p in (3.0, 1.0)]
    assert hh.grid_edge(family[1], family) == 'weak' and hh.grid_edge(family[0], family) == 'strong'
    assert {r.prior for r in hh.extend_grid(family[1], family)} == {1.0 / 10 ** 0.5, 0.0}
    assert {r.prior for r in hh.extend_grid(family[0], family)} == {3.0 * 10 ** 0.5, hh.STRONGEST_PRIOR}
    full = [replace(family[0], prior=p) for p in hh.PRIOR_GRID]
    assert all(hh.grid_edge(r, full) is None for r in full)  # the shipped grid's edges are closed
    assert hh.grid_edge(hh.UNTRAINED, family) is None
    # on the tiny set (badness = severity) learning wins and the weaker prior is best: select widens the grid
    choice, evaluations = hh.select(net.quality, features, [hh.UNTRAINED, *family], protocol=SMALL)
    tried = [e.recipe for e in evaluations]
    assert len(tried) > 3 and hh.grid_edge(choice.best, tried) is None
    assert {0.0, 1.0 / 10 ** 0.5} <= {r.prior for r in tried}


def test_nested_procedure_never_sees_its_test_scenes(tiny, monkeypatch):
    _, rows, net, features = tiny
    seen = []
    real = hh.evaluate

    def spy(start, features, recipes, subset=None, *args, **kwargs):
        seen.append(set(np.asarray(subset).tolist()))
        return real(start, features, recipes, subset, *args, **kwargs)

    monkeypatch.setattr(hh, 'evaluate', spy)
    candidates = [hh.UNTRAINED, hh.Recipe(learn=('fusion',), epochs=5)]
    prediction, choices = hh.nested_cv(net.quality, features, candidates, SMALL)
    outer = grouped_folds(features.scenes, SMALL.folds, SMALL.nested_seed)
    assert len(outer) == len(choices)
    # select evaluates once or more per outer fold (grid extension, refinement), always on its training scenes
    training = [set(np.setdiff1d(np.arange(len(rows)), test).tolist()) for test in outer]
    assert all(inner in training for inner in seen) and all(train in seen for train in training)
    for test, train in zip(outer, training):
        assert not {features.scenes[i] for i in test} & {features.scenes[i] for i in train}
    assert np.isfinite(prediction).all()


def test_evaluation_predicts_each_item_only_from_models_that_never_saw_its_scene(tiny):
    _, rows, net, features = tiny
    recipe = hh.Recipe(learn=('fusion', 'traditional'), epochs=5)
    evaluation, = hh.evaluate(net.quality, features, [recipe], folds=2, seeds=(0, 1))
    assert np.isfinite(evaluation.scene).all() and set(evaluation.distortion) == set(KINDS)
    for seed_row, seed in enumerate((0, 1)):
        for test in grouped_folds(features.scenes, 2, seed):
            train = np.setdiff1d(np.arange(len(rows)), test)
            heads, _ = hh.train_heads(net.quality, features, train, recipe)
            expected = hf.scores(heads, features, test).detach().numpy()
            np.testing.assert_allclose(evaluation.scene[seed_row, test], expected, rtol=1e-4)
    blur = np.isfinite(evaluation.distortion['blur'])
    assert {rows[i].distortion for i in np.flatnonzero(blur)} == {'blur'}


def test_candidates_try_every_part_over_the_whole_prior_range():
    for variant, (_, groups) in hh.VARIANTS.items():
        candidates = hh.candidate_recipes(groups)
        assert candidates[0] == hh.UNTRAINED
        for recipe in candidates:
            assert set(recipe.learn) <= {'fusion', *groups}
        parts = [('fusion',)] + [('fusion', g) for g in groups] + [('fusion', *groups)]
        for learn in parts:  # every part alike: from the strongest prior to none
            for linear in (0.0, 1.0):
                priors = {r.prior for r in candidates if r.learn == learn and r.linear == linear and not r.within_scene}
                assert priors == set(hh.PRIOR_GRID), (variant, learn)
        assert max(hh.PRIOR_GRID) == hh.STRONGEST_PRIOR >= 10 and min(hh.PRIOR_GRID) == 0
        assert any(r.within_scene for r in candidates) == ('traditional' in groups)


def test_several_folders_read_as_one_list_keeping_scenes(tiny, tmp_path):
    root, rows, _, _ = tiny
    for name, subset in (('a', rows[:6]), ('b', rows[6:12])):
        folder = tmp_path / name
        folder.mkdir()
        lines = ['dist_img,ref_img,distortion,dmos']
        for row in subset:
            for path in (row.dist, row.ref):
                if not (folder / path).exists():
                    (folder / path).write_bytes((root / path).read_bytes())
            lines.append(f'{row.dist},{row.ref},{row.distortion},{row.mos}')
        (folder / 'scores.csv').write_text('\n'.join(lines) + '\n')
    common, merged = read_mos_folders([tmp_path / 'a', tmp_path / 'b'])
    assert common == tmp_path.resolve() and len(merged) == 12
    assert all((common / r.dist).is_file() and (common / r.ref).is_file() for r in merged)
    assert [r.scene for r in merged] == [r.scene for r in rows[:12]]
    assert merged[0].dist == f'a/{rows[0].dist}' and merged[6].dist == f'b/{rows[6].dist}'
    with pytest.raises(MosDataError, match='twice'):
        read_mos_folders([tmp_path / 'a', tmp_path / 'a'])
    out = tmp_path / 'meta'
    assert prepare_mos([str(tmp_path / 'a'), str(tmp_path / 'b'), '--name', 'ab', '--folds', '2', '--out', str(out)]) == 0
    listed = (out / 'meta_info_ab.csv').read_text().splitlines()[1:]
    assert [line.split(',')[1] for line in listed] == [r.dist for r in merged]
    assert [line.split(',')[3] for line in listed] == [r.scene for r in merged]


def test_feature_cache_is_reused_only_while_its_inputs_are_unchanged(tiny, tmp_path, monkeypatch):
    root, rows, _, features = tiny
    data = tmp_path / 'data'
    data.mkdir()
    for row in rows[:3]:
        for path in (row.dist, row.ref):
            (data / path).write_bytes((root / path).read_bytes())
    calls = []
    real = hf.pooled_features
    monkeypatch.setattr(hf, 'pooled_features', lambda *a, **k: calls.append(1) or real(*a, **k))
    first = hf.cached_features('alex', rows[:3], data, tmp_path / 'cache')
    again = hf.cached_features('alex', rows[:3], data, tmp_path / 'cache')
    assert len(calls) == 1 and all(torch.equal(a, b) for a, b in zip(first.means['semantic'], again.means['semantic']))
    torch.testing.assert_close(first.means['semantic'][0], features.means['semantic'][0][:3])
    _save(distort(load_image(data / rows[0].ref), 'noise', 0), data / rows[0].dist)  # an image changes
    hf.cached_features('alex', rows[:3], data, tmp_path / 'cache')
    hf.cached_features('alex', [replace(rows[0], scene='other'), *rows[1:3]], data, tmp_path / 'cache')
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, 'plain')  # other CPU convolutions (another machine's choice)
    hf.cached_features('alex', [replace(rows[0], scene='other'), *rows[1:3]], data, tmp_path / 'cache')
    assert len(calls) == 4 and len(list((tmp_path / 'cache').glob('alex__*.pt'))) == 1


@pytest.mark.parametrize('name', [n for n in SPIPS_METRIC_CONFIGS if n != 'spips-squeeze'])
def test_registered_heads_exist_and_state_their_provenance(name):
    options = SPIPS_METRIC_CONFIGS[name]['metric_opts']
    version = options.get('heads_version', LABEL_FREE)
    groups = tuple(options.get('groups', GROUPS))
    path = default_heads_path(options['net'], groups, version)
    assert path.is_file(), path
    meta = pyiqa.create_metric(name, device='cpu').net.meta
    if version == HUMAN_TRAINED:
        assert 'human-trained on live_dev + live_jpeg_dev' in meta['provenance']
        assert meta['training']['n'] == 121 and len(meta['training']['scenes']) == 17
        cv = meta['cv']  # the ship rule held when these heads were written
        gain = cv['nested_gain']
        for statistic in ('srcc', 'plcc'):
            assert gain[statistic]['estimate'] == pytest.approx(
                cv['nested_pooled'][statistic] - cv['label_free_pooled'][statistic], abs=1e-9)
            assert gain[statistic]['low'] > -rs.NONINFERIORITY_MARGIN
        assert any(gain[statistic]['low'] > 0 for statistic in ('srcc', 'plcc'))
        assert set(cv['distortion_fold_gains']) == set(cv['distortion_folds'])
        for kind, gains in cv['distortion_fold_gains'].items():
            for statistic in ('srcc', 'plcc'):
                assert gains[statistic]['high'] >= 0
                assert gains[statistic]['estimate'] == pytest.approx(
                    cv['distortion_folds'][kind][statistic] - cv['label_free_distortion_folds'][kind][statistic], abs=1e-9)
        assert len(cv['held_out_predictions']) == 121
    else:
        assert 'not BAPPS-trained' in meta['provenance'] or 'label' in meta['provenance']


def test_every_variant_keeps_a_label_free_name():
    label_free = {n for n, c in SPIPS_METRIC_CONFIGS.items() if c['metric_opts'].get('heads_version', LABEL_FREE) == LABEL_FREE}
    for variant in hh.VARIANTS:
        assert f'{variant}-label-free' in label_free


def test_shipped_human_heads_are_exactly_the_variants_whose_cross_validation_supports_them():
    """metric_configs.py follows what `make heads` decided: a file of the current human-trained
    version exists iff it is the default; every earlier version stays loadable by name."""
    for variant, (net, groups) in hh.VARIANTS.items():
        version = SPIPS_METRIC_CONFIGS[variant]['metric_opts']['heads_version']
        assert default_heads_path(net, groups, HUMAN_TRAINED).is_file() == (version == HUMAN_TRAINED)
        assert default_heads_path(net, groups, version).is_file()
    for net, groups in (('alex', GROUPS), ('alex', ('perceptual', 'semantic'))):
        assert SPIPS(net, groups, heads_version=HUMAN_TRAINED_V03).meta['version'] == HUMAN_TRAINED_V03
