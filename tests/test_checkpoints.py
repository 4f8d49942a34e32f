"""Broken, foreign and mismatched checkpoints given as ``pretrained_model_path`` (through
``create_metric`` and ``SPIPS``): a :class:`CheckpointError` naming the file and the problem, and a
network left as it was."""

import os
import pickle
import re

import pyiqa
import pytest
import torch

from spips_pyiqa import SPIPS
from spips_pyiqa.archs import spips_arch
from spips_pyiqa.archs.checkpoint import CheckpointError, load_checkpoint, save_heads
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.archs.groups import GROUPS
from spips_pyiqa.archs.spips_arch import default_heads_path
from spips_pyiqa.utils.weights import lpips_head_path

ALEX = {'net': 'alex', 'groups': list(GROUPS)}
NO_SEMANTIC = ('traditional', 'perceptual')


@pytest.fixture(scope='module')
def spips() -> SPIPS:
    return SPIPS(net='alex', heads_version='0.1')


def _state(model):
    return {key: value.clone() for key, value in model.state_dict().items()}


def _without_meta(source, path):
    checkpoint = torch.load(source, map_location='cpu', weights_only=True)
    checkpoint.pop('meta')
    torch.save(checkpoint, path)
    return path


def _edited_heads(path, edit):
    checkpoint = torch.load(default_heads_path('alex', GROUPS), map_location='cpu', weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path)
    return path


def _set_nan(checkpoint):
    checkpoint['params']['heads.semantic.convs.1.weight'][0, 3] = float('nan')


def _set_value(key, index, value):
    def edit(checkpoint):
        checkpoint['params'][key].view(-1)[index] = value
    return edit


def _lpips_in_params(checkpoint):
    checkpoint['params'] = {f'lin{i}.model.1.weight': torch.ones(1, c, 1, 1) for i, c in enumerate((64, 192))}


def _bad_meta(checkpoint):
    checkpoint['meta'] = 'alex'


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _saved(path, obj):
    torch.save(obj, path)
    return path


def _half_file(path):
    data = default_heads_path('alex', GROUPS).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# name -> (function of tmp_path making the file, pattern of the error's message after the path)
BROKEN = {
    'missing': (lambda tmp: tmp / 'nowhere.pth', 'not found'),
    'directory': (lambda tmp: tmp, 'is not a file'),
    'empty': (lambda tmp: _write(tmp / 'empty.pth', b''), 'truncated, corrupted or not a torch file'),
    'truncated': (lambda tmp: _half_file(tmp / 'truncated.pth'), 'truncated, corrupted or not a torch file'),
    'garbage': (lambda tmp: _write(tmp / 'garbage.pth', os.urandom(4096)), 'not a torch file'),
    'a JPEG': (lambda tmp: _write(tmp / 'x.jpg', b'\xff\xd8\xff\xe0' + bytes(200)), 'not a torch file'),
    'a tensor': (lambda tmp: _saved(tmp / 't.pth', torch.ones(3)), r'is not a SPIPS checkpoint \(it holds a Tensor\)'),
    'params not a dict': (lambda tmp: _saved(tmp / 'p.pth', {'params': torch.ones(3)}),
                          r"its 'params' is a Tensor, not a state dict"),
    'NaN weights': (lambda tmp: _edited_heads(tmp / 'nan.pth', _set_nan),
                    'NaN or Inf values in heads.semantic.convs.1.weight'),
    '+Inf weights': (lambda tmp: _edited_heads(tmp / 'inf.pth', _set_value('heads.perceptual.convs.1.weight', 5, float('inf'))),
                     'NaN or Inf values in heads.perceptual.convs.1.weight'),
    '-Inf weights': (lambda tmp: _edited_heads(tmp / 'ninf.pth', _set_value('heads.traditional.convs.0.weight', 0, -float('inf'))),
                     'NaN or Inf values in heads.traditional.convs.0.weight'),
    # -Inf makes that group's lambda 0: a finite but wrong score, so it must be refused too
    '-Inf fusion logit': (lambda tmp: _edited_heads(tmp / 'logit.pth', _set_value('fusion.logits', 1, -float('inf'))),
                          'NaN or Inf values in fusion.logits'),
    'LPIPS heads inside params': (lambda tmp: _edited_heads(tmp / 'lp.pth', _lpips_in_params),
                                  'missing keys: .*heads.*unexpected keys: lin0.model.1.weight'),
    'meta not a dict': (lambda tmp: _edited_heads(tmp / 'meta.pth', _bad_meta), "'meta' must be a dict"),
    'VGG heads': (lambda tmp: default_heads_path('vgg', GROUPS),
                  "made for net='vgg' but this SPIPS has net='alex'"),
    'VGG heads without meta': (lambda tmp: _without_meta(default_heads_path('vgg', GROUPS), tmp / 'vgg.pth'),
                               (r"heads.perceptual.convs.1.weight is \(1, 128, 1, 1\), needs \(1, 192, 1, 1\)"
                                r".*its heads fit net='vgg'")),
    'SqueezeNet heads without meta': (lambda tmp: _without_meta(default_heads_path('squeeze', GROUPS), tmp / 'sq.pth'),
                                      "unexpected keys: heads.perceptual.convs.3.weight.*fit net='squeeze'"),
    'heads of another group set': (lambda tmp: default_heads_path('alex', NO_SEMANTIC),
                                   r"made for groups=\['traditional', 'perceptual'\] but this SPIPS has groups="),
    'another group set without meta': (
        lambda tmp: _without_meta(default_heads_path('alex', NO_SEMANTIC), tmp / 'ns.pth'),
        (r"missing keys: heads.semantic.convs.0.weight, heads.semantic.convs.1.weight; unexpected keys: none"
         r".*fit net='alex', groups=\['traditional', 'perceptual'\]")),
}


@pytest.mark.parametrize('case', list(BROKEN))
def test_broken_checkpoint_is_refused_and_model_unchanged(spips, tmp_path, case):
    make, message = BROKEN[case]
    path = make(tmp_path)
    before = _state(spips)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(spips, path, ALEX)
    assert str(path) in str(error.value)
    assert '\n' not in str(error.value)
    assert re.search(message, str(error.value)), str(error.value)
    after = spips.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before), 'a refused file changed the network'


def test_partial_shape_mismatch_copies_nothing(spips, tmp_path):
    """One tensor of the wrong shape among right ones: no value is copied (load_state_dict would)."""
    def edit(checkpoint):
        params = checkpoint['params']
        params['fusion.logits'] = params['fusion.logits'] + 1.0
        params['heads.semantic.convs.1.weight'] = torch.ones(1, 7, 1, 1)
    path = _edited_heads(tmp_path / 'mixed.pth', edit)
    before = _state(spips)
    with pytest.raises(CheckpointError, match=r'heads.semantic.convs.1.weight is \(1, 7, 1, 1\)'):
        load_checkpoint(spips, path, ALEX)
    assert torch.equal(spips.quality.fusion.logits, before['quality.fusion.logits'])


def test_empty_path(spips):
    with pytest.raises(CheckpointError, match='checkpoint path is empty'):
        load_checkpoint(spips, '', ALEX)


def test_real_lpips_weights_file(spips):
    """The LPIPS .pth that pyiqa caches: a bare state dict, named as such."""
    path = lpips_head_path('alex')
    if not path.is_file():
        pytest.skip(f'{path} is absent (python -m spips_pyiqa fetch-weights)')
    with pytest.raises(CheckpointError, match=r"no 'params' state dict \(keys: lin0.model.1.weight.*LPIPS"):
        load_checkpoint(spips, path, ALEX)


def test_pickled_code_is_refused_not_run(spips, tmp_path):
    marker = tmp_path / 'executed'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    path = tmp_path / 'exploit.pth'
    path.write_bytes(pickle.dumps({'params': Exploit()}, protocol=2))
    with pytest.raises(CheckpointError, match='refused: unpickling those can run code'):
        load_checkpoint(spips, path, ALEX)
    assert not marker.exists()


def test_heads_and_full_checkpoints_round_trip(spips, tmp_path):
    """What does load: save_heads files and pyiqa-style full checkpoints, with identical scores."""
    ref = photo('chelsea', 64)
    target = distort(ref, 'jpeg', 2)
    trained = SPIPS(net='alex', heads_version='0.1')
    with torch.no_grad():
        trained.quality.fusion.logits.add_(torch.tensor([0.5, 0.0, -0.5]))  # not the defaults
        expected = trained(target, ref)
        assert not torch.allclose(expected, spips(target, ref))
    heads = save_heads(trained.quality, tmp_path / 'heads.pth', {'net': 'alex', 'groups': list(GROUPS)})
    full = _saved(tmp_path / 'full.pth', {'params': trained.state_dict()})
    for path in (heads, full):
        before = _state(spips)
        with torch.no_grad():
            assert load_checkpoint(spips, path, ALEX).get('net') == ('alex' if path == heads else None)
            torch.testing.assert_close(spips(target, ref), expected, atol=1e-6, rtol=0)
            spips.load_state_dict(before)
        model = SPIPS(net='alex', pretrained_model_path=path)
        with torch.no_grad():
            torch.testing.assert_close(model(target, ref), expected, atol=1e-6, rtol=0)


def test_full_checkpoint_of_another_backbone(spips, tmp_path):
    vgg = SPIPS(net='vgg', pretrained=False)
    torch.save({'params': vgg.state_dict()}, tmp_path / 'vgg_full.pth')
    with pytest.raises(CheckpointError, match="missing keys: deep.backbone.*its heads fit net='vgg'"):
        load_checkpoint(spips, tmp_path / 'vgg_full.pth', ALEX)


@pytest.mark.parametrize('route', ['create_metric', 'SPIPS'])
def test_pretrained_model_path_routes(tmp_path, route):
    path = _half_file(tmp_path / 'spips_alex.pth')
    with pytest.raises(CheckpointError, match=f'cannot read SPIPS checkpoint {path}: truncated'):
        if route == 'create_metric':
            pyiqa.create_metric('spips', device='cpu', pretrained_model_path=str(path))
        else:
            SPIPS(net='alex', pretrained_model_path=path)
    with pytest.raises(CheckpointError, match=r"made for groups=\['traditional', 'perceptual'\]"):
        pyiqa.create_metric('spips', device='cpu', pretrained_model_path=str(default_heads_path('alex', NO_SEMANTIC)))


def test_missing_default_heads_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(spips_arch, 'HEADS_DIR', tmp_path)
    with pytest.raises(CheckpointError, match=f'SPIPS checkpoint not found: {tmp_path / "spips_alex_v0.1.pth"}'):
        SPIPS(net='alex', heads_version='0.1')



def _full_state_with(spips, key, value):
    state = _state(spips)
    state[key].view(-1)[0] = value
    return state


@pytest.mark.parametrize('key', ['quality.fusion.logits', 'quality.heads.semantic.convs.0.weight',
                                 'deep.backbone.slice1.0.weight'])
@pytest.mark.parametrize('value', [float('inf'), -float('inf'), float('nan')])
def test_non_finite_full_checkpoint_is_refused(spips, tmp_path, key, value):
    """A full (pyiqa training) checkpoint with one non-finite value, heads or backbone."""
    path = _saved(tmp_path / 'full.pth', {'params': _full_state_with(spips, key, value)})
    before = _state(spips)
    with pytest.raises(CheckpointError, match=f'{re.escape(str(path))} has NaN or Inf values in {re.escape(key)}'):
        load_checkpoint(spips, path, ALEX)
    assert all(torch.equal(before[k], v) for k, v in spips.state_dict().items())


@pytest.mark.parametrize('route', ['SPIPS.load_state_dict', 'QualityHeads.load_state_dict', 'pyiqa load_weights'])
def test_non_finite_weights_refused_on_routes_around_load_checkpoint(spips, tmp_path, route):
    """pyiqa's ``InferenceModel.load_weights`` and training ``load_network`` call ``load_state_dict``
    directly: the network's pre-hook refuses NaN/Inf there too, before copying anything."""
    before = _state(spips)
    with pytest.raises(CheckpointError, match=r'NaN or Inf values in (quality\.)?fusion\.logits'):
        if route == 'SPIPS.load_state_dict':
            spips.load_state_dict(_full_state_with(spips, 'quality.fusion.logits', -float('inf')))
        elif route == 'QualityHeads.load_state_dict':
            state = {k: v.clone() for k, v in spips.quality.state_dict().items()}
            state['fusion.logits'][2] = float('inf')
            spips.quality.load_state_dict(state)
        else:
            metric = pyiqa.create_metric('spips', device='cpu')
            path = _saved(tmp_path / 'full.pth', {'params': _full_state_with(metric.net, 'quality.fusion.logits', float('inf'))})
            metric.load_weights(str(path))
    assert all(torch.equal(before[k], v) for k, v in spips.state_dict().items())
