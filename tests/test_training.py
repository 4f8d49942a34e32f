"""End to end on a tiny BAPPS-layout fixture: prepare-bapps, YAML training through pyiqa's loop,
checkpoint reload through ``create_metric``, and every shipped option file parsing and building."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pyiqa.archs import build_network

import pyiqa
from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
from spips_pyiqa.cli.prepare_bapps import cli as prepare_bapps
from spips_pyiqa.models.spips_training import linear_decay_factor

REPO = Path(__file__).resolve().parents[1]
TRAIN_OPTIONS = sorted((REPO / 'options').glob('train_*.yml'))
BAPPS_OPTIONS = [p for p in TRAIN_OPTIONS if yaml.safe_load(p.read_text())['model_type'] == 'SPIPSBAPPSModel']
MOS_DATASETS = ('kadid10k', 'pipal', 'tid2013', 'csiq', 'live', 'live_dev')
TEST_OPTIONS = sorted((REPO / 'options').glob('test_*.yml'))


def _fixture_options(options: dict, root: Path) -> dict:
    """The shipped options pointed at the fixture, with a run of a few iterations."""
    for dataset in options['datasets'].values():
        dataset['dataroot_target'] = str(root)
        dataset['meta_info_file'] = str(root / 'meta_info' / 'meta_info_BAPPSDataset.csv')
        dataset['split_file'] = str(root / 'meta_info' / 'bapps_official.pkl')
        dataset['batch_size_per_gpu'] = 4
        dataset['num_worker_per_gpu'] = 0
    options['num_gpu'] = 0
    options['train']['total_epoch'] = 2
    options['train']['scheduler'].update(n_epochs=1, n_epochs_decay=1)
    options['train']['optim']['lr'] = 1e-2
    options['val']['val_freq'] = 3
    options['logger'].update(print_freq=1, save_latest_freq=3)
    return options


def _pyiqa_checkout_launcher(tmp_path: Path) -> list:
    """``python pyiqa/train.py`` as from a pyiqa source checkout (root = the checkout)."""
    script = tmp_path / 'IQA-PyTorch' / 'pyiqa' / 'train.py'
    script.parent.mkdir(parents=True)
    script.write_text((Path(pyiqa.__file__).parent / 'train.py').read_text())
    return [sys.executable, str(script)]


LAUNCHERS = {
    'spips_pyiqa.train': lambda tmp_path: ([sys.executable, '-m', 'spips_pyiqa.train'], tmp_path),
    # No spips_pyiqa import at all: SPIPS, the model, loss and 2AFC metric come via entry points.
    'pyiqa/train.py': lambda tmp_path: (_pyiqa_checkout_launcher(tmp_path), tmp_path / 'IQA-PyTorch'),
}


@pytest.mark.slow
@pytest.mark.parametrize('launcher', list(LAUNCHERS))
def test_train_through_yaml_and_reload(tmp_path, launcher):
    command, root_dir = LAUNCHERS[launcher](tmp_path)
    root = make_synthetic_bapps(tmp_path / 'BAPPS')
    assert prepare_bapps([str(root)]) == 0
    options = _fixture_options(yaml.safe_load((REPO / 'options' / 'train_spips.yml').read_text()), root)
    option_file = tmp_path / 'train.yml'
    option_file.write_text(yaml.safe_dump(options))

    run = subprocess.run(
        command + ['-opt', str(option_file)], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = run.stdout + run.stderr
    assert 'SPIPSBAPPSModel' in log and '2afc' in log

    models = root_dir / 'experiments' / options['name'] / 'models'
    checkpoint = models / 'net_best.pth'
    assert checkpoint.is_file(), sorted(p.name for p in models.iterdir())

    trained = pyiqa.create_metric('spips', device='cpu', pretrained_model_path=str(checkpoint))
    default = pyiqa.create_metric('spips', device='cpu')
    trained_heads, default_heads = trained.net.quality.state_dict(), default.net.quality.state_dict()
    assert any(not torch.equal(trained_heads[k], default_heads[k]) for k in trained_heads)
    for key, value in trained_heads.items():
        if key.startswith('heads.'):
            assert (value >= 0).all(), f'{key} has negative weights after training'
    x = torch.rand(1, 3, 64, 64)
    assert torch.isfinite(trained(x, x.flip(-1))).all()


@pytest.mark.parametrize('option_file', TRAIN_OPTIONS, ids=lambda p: p.name)
def test_option_files_parse_and_build(option_file):
    options = yaml.safe_load(option_file.read_text())
    if options['model_type'] == 'SPIPSBAPPSModel':
        categories = ('traditional', 'cnn', 'superres', 'deblur', 'color', 'frameinterp')
        assert {'train', *(f'val_{c}' for c in categories)} <= set(options['datasets'])
    else:
        assert options['model_type'] == 'SPIPSMOSModel'
        train = options['datasets']['train']
        assert train['type'] == 'GeneralFRDataset' and isinstance(train['lower_better'], bool)
        assert options['train']['mos_loss_opt']['type'] == 'PairwisePreferenceLoss'
    network = build_network(dict(options['network']))
    assert network.groups == tuple(options['network']['groups'])
    assert sum(p.numel() for p in network.parameters() if p.requires_grad) > 0


def test_variants_have_train_and_test_options():
    names = {yaml.safe_load(p.read_text())['metric']['name'] for p in TEST_OPTIONS}
    assert {'spips', 'spips-vgg', 'spips-no-semantic', 'spips-no-traditional'} <= names
    assert len(BAPPS_OPTIONS) == 4
    assert {p.stem for p in TRAIN_OPTIONS} - {p.stem for p in BAPPS_OPTIONS} == {f'train_spips_{d}' for d in MOS_DATASETS}


def test_mos_option_files_follow_pyiqa_dataset_configs():
    """Folders, score ranges and directions of the MOS option files are pyiqa's own."""
    configs = yaml.safe_load((Path(pyiqa.__file__).parent / 'default_dataset_configs.yml').read_text())
    for name in MOS_DATASETS[:-1]:
        train = yaml.safe_load((REPO / 'options' / f'train_spips_{name}.yml').read_text())['datasets']['train']
        for key in ('dataroot_target', 'dataroot_ref', 'mos_range', 'lower_better'):
            assert train.get(key) == configs[name].get(key), (name, key)


@pytest.mark.parametrize('option_file', TEST_OPTIONS, ids=lambda p: p.name)
def test_test_option_files_build_their_metric(option_file):
    metric = yaml.safe_load(option_file.read_text())['metric']
    built = pyiqa.create_metric(metric['name'], device='cpu')
    assert built.metric_mode == 'FR' and built.net.meta['provenance']


def test_linear_decay_schedule_is_lpips():
    factors = [linear_decay_factor(e, n_epochs=5, n_epochs_decay=5) for e in range(10)]
    assert factors[:5] == [1.0] * 5
    assert all(a > b > 0 for a, b in zip(factors[4:], factors[5:]))
