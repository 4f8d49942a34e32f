"""Human-trained heads: the pooled-feature identity, training, scene-wise folds, the nested choice,
and the shipped heads' consistency with their registered names and provenance."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pyiqa
from spips_pyiqa.archs.groups import GROUPS
from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.mos_prepare import MosRow
from spips_pyiqa.metric_configs import HUMAN_TRAINED, SPIPS_METRIC_CONFIGS
from spips_pyiqa.recipes import human_heads as hh

SCENES = ('astronaut', 'coffee', 'chelsea')
KINDS = ('noise', 'blur', 'jpeg')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """3 scenes x 3 distortion types x 2 severities at 64-80 px, DMOS-like badness = severity."""
    root = tmp_path_factory.mktemp('tiny')
    rows = []
    for s, scene in enumerate(SCENES):
        ref = photo(scene, 64 + 8 * s)
        Image.fromarray((ref[0].permute(1, 2, 0).numpy() * 255).round().astype('uint8')).save(root / f'{scene}.png')
        for kind in KINDS:
            for severity in (1, 3):
                name = f'{scene}_{kind}{severity}.png'
                image = distort(ref, kind, severity)[0].permute(1, 2, 0).numpy()
                Image.fromarray((image * 255).round().astype('uint8')).save(root / name)
                rows.append(MosRow(f'{scene}.png', name, severity + 0.1 * s, f'{scene}.png', kind))
    net = SPIPS('alex').eval()
    return root, rows, net, hh.pooled_features(net, rows, root)


def test_scores_from_pooled_features_are_spips_on_the_full_images(tiny):
    root, rows, net, features = tiny
    with torch.no_grad():
        direct = torch.cat([net(load_image(root / r.dist), load_image(root / r.ref)) for r in rows]).reshape(-1)
        pooled = hh.scores(net.quality, features, range(len(rows)))
    torch.testing.assert_close(pooled, direct, rtol=1e-5, atol=1e-6)
    # and for an ablation, through its group subset
    ablation = SPIPS('alex', ('perceptual', 'semantic')).eval()
    with torch.no_grad():
        direct = ablation(load_image(root / rows[0].dist), load_image(root / rows[0].ref)).reshape(-1)
        pooled = hh.scores(ablation.quality, features.select_groups(ablation.groups), [0])
    torch.testing.assert_close(pooled, direct, rtol=1e-5, atol=1e-6)


def test_training_learns_only_the_named_parts_keeps_weights_non_negative_and_lowers_the_loss(tiny):
    _, rows, net, features = tiny
    start = net.quality
    untouched, curve = hh.train_heads(start, features, range(len(rows)), hh.UNTRAINED)
    assert curve == [] and all(torch.equal(a, b) for a, b in zip(untouched.state_dict().values(), start.state_dict().values()))
    recipe = hh.Recipe(learn=('fusion', 'traditional'), epochs=30)
    trained, curve = hh.train_heads(start, features, range(12), recipe, monitor=range(12, 18))
    assert len(curve) == 31 and curve[-1]['loss'] < curve[0]['loss'] and 'held-out SRCC' in curve[-1]
    before, after = start.state_dict(), trained.state_dict()
    factors = {k: after[k] / before[k] for k in after if k.startswith('heads.') and 'traditional' not in k}
    factor = next(iter(factors.values())).flatten()[0]
    for key, ratio in factors.items():  # frozen heads move only by the one common scale factor
        torch.testing.assert_close(ratio[before[key] != 0], torch.full_like(ratio[before[key] != 0], factor))
    assert factor != 1 and not torch.equal(after['fusion.logits'], before['fusion.logits'])
    assert not torch.allclose(after['heads.traditional.convs.0.weight'] / factor, before['heads.traditional.convs.0.weight'])
    assert (after['heads.traditional.convs.0.weight'] >= 0).all()
    with torch.no_grad():  # one global factor keeps the starting heads' mean score on the training images
        torch.testing.assert_close(hh.scores(trained, features, range(12)).mean(), hh.scores(start, features, range(12)).mean())
    assert torch.equal(start.state_dict()['fusion.logits'], before['fusion.logits'])


def test_folds_hold_out_whole_scenes_or_distortion_types(tiny):
    _, rows, _, features = tiny
    for by, key in (('scene', 'scene'), ('distortion', 'distortion')):
        folds = hh.folds(features, by)
        assert len(folds) == 3
        for name, train, test in folds:
            assert {getattr(rows[i], key) for i in test} == {name}
            assert name not in {getattr(rows[i], key) for i in train}
            assert sorted(train + test) == list(range(len(rows)))


def test_nested_choice_sees_only_the_training_scenes(tiny, monkeypatch):
    _, rows, net, features = tiny
    seen = []
    real = hh.select_recipe

    def spy(start, features, candidates, subset=None):
        seen.append({rows[i].scene for i in subset})
        return real(start, features, candidates, subset)

    monkeypatch.setattr(hh, 'select_recipe', spy)
    candidates = [hh.UNTRAINED, hh.Recipe(learn=('fusion',), epochs=5)]
    result, choices = hh.nested_scene_cv(net.quality, features, candidates)
    assert len(seen) == 3 and all(len(s) == 2 for s in seen)
    for held_out, scenes in zip(sorted({r.scene for r in rows}), seen):
        assert held_out not in scenes
    assert set(choices) == set(result.fold_srcc) and np.isfinite(result.predictions).all()


def test_candidates_only_name_parts_the_variant_has():
    for variant, (_, groups) in hh.VARIANTS.items():
        for recipe in hh.candidate_recipes(groups):
            assert set(recipe.learn) <= {'fusion', *groups}
    assert hh.candidate_recipes(GROUPS)[0] == hh.UNTRAINED


@pytest.mark.parametrize('name', [n for n in SPIPS_METRIC_CONFIGS if n != 'spips-squeeze'])
def test_registered_heads_exist_and_state_their_provenance(name):
    options = SPIPS_METRIC_CONFIGS[name]['metric_opts']
    version = options.get('heads_version', '0.1')
    groups = tuple(options.get('groups', GROUPS))
    path = default_heads_path(options['net'], groups, version)
    assert path.is_file(), path
    meta = pyiqa.create_metric(name, device='cpu').net.meta
    if version == HUMAN_TRAINED:
        assert 'human-trained on live_dev' in meta['provenance']
        assert meta['training']['n'] == 39 and len(meta['training']['scenes']) == 3
        cv = meta['cv']
        assert np.mean(list(cv['nested_scene_srcc'].values())) > np.mean(list(cv['label_free_scene_srcc'].values()))
    else:
        assert 'not BAPPS-trained' in meta['provenance'] or 'label' in meta['provenance']


def test_every_variant_keeps_a_label_free_name():
    label_free = {n for n, c in SPIPS_METRIC_CONFIGS.items() if c['metric_opts'].get('heads_version', '0.1') == '0.1'}
    for variant in hh.VARIANTS:
        assert f'{variant}-label-free' in label_free


def test_shipped_human_heads_are_exactly_the_variants_whose_cross_validation_supports_them():
    """metric_configs.py follows what `make heads` decided: a v0.2 file exists iff it is the default."""
    for variant, (net, groups) in hh.VARIANTS.items():
        version = SPIPS_METRIC_CONFIGS[variant]['metric_opts']['heads_version']
        assert default_heads_path(net, groups, HUMAN_TRAINED).is_file() == (version == HUMAN_TRAINED)
