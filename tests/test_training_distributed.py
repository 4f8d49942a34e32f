"""Training under ``torchrun --launcher pytorch`` on CPU (gloo): 2 processes with half the batch each
give the heads of 1 process with the whole batch, only rank 0 writes, and both resume from pyiqa's
``resume_state`` the same way."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from spips_pyiqa.cli.prepare_bapps import cli as prepare_bapps
from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
from test_training import REPO, _fixture_options
from torchrun import launch_env, torchrun

GLOBAL_BATCH = 4


def _options(root: Path, folder: Path, name: str, per_rank_batch: int, resume: bool = False) -> Path:
    """The shipped recipe on the fixture: 12 triplets = 3 steps per epoch, 2 epochs; a checkpoint
    and training state after step 3; a save (and so a replica check) after every step."""
    options = _fixture_options(yaml.safe_load((REPO / 'options' / 'train_spips.yml').read_text()), root)
    options['name'] = name
    options['datasets']['train']['batch_size_per_gpu'] = per_rank_batch
    options['val']['val_freq'] = 10**6  # validation only at the end
    options['logger'].update(print_freq=1, save_latest_freq=1, save_checkpoint_freq=3)
    if resume:
        options['path']['resume_state'] = f'experiments/{name}/training_states/3.state'
    path = folder / f'{name}{"_resume" if resume else ""}.yml'
    path.write_text(yaml.safe_dump(options))
    return path


def _train(nproc: int, option_file: Path, cwd: Path) -> str:
    if nproc == 1:
        command = [sys.executable, '-m', 'spips_pyiqa.train', '-opt', str(option_file)]
        run = subprocess.run(command, cwd=cwd, env=launch_env(), capture_output=True, text=True, timeout=300)
    else:
        run = torchrun(nproc, ['-m', 'spips_pyiqa.train', '-opt', str(option_file), '--launcher', 'pytorch'], cwd)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def _heads(cwd: Path, name: str, checkpoint: str) -> dict[str, torch.Tensor]:
    return torch.load(cwd / 'experiments' / name / 'models' / f'{checkpoint}.pth', weights_only=True)['params']


def _max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def _written(cwd: Path, name: str) -> list[str]:
    """Files of an experiment folder, the run's name and log time stamps taken out."""
    folder = cwd / 'experiments' / name
    return sorted(str(p.relative_to(folder)).replace(name, 'NAME') if not p.name.endswith('.log') else 'LOG'
                  for p in folder.rglob('*') if p.is_file())


@pytest.mark.slow
def test_train_distributed_two_processes_equal_one_and_resume(tmp_path):
    root = make_synthetic_bapps(tmp_path / 'BAPPS', n_train=4, n_val=1, n_jnd=1)
    assert prepare_bapps([str(root)]) == 0
    one = _train(1, _options(root, tmp_path, 'one', GLOBAL_BATCH), tmp_path)
    two = _train(2, _options(root, tmp_path, 'two', GLOBAL_BATCH // 2), tmp_path)
    assert 'World size (gpu number): 2' in two and 'Require iter number per epoch: 3' in two

    # Equal to rounding: the Winograd convolutions' batched products round a little differently for 2
    # images than for 4 (1e-7 in a feature distance), which Adam's normalised steps turn into 1.5e-5
    # after 3 steps; 1e-4 is still 1/150 of how far training moves them here (1.5e-2).
    for checkpoint in ('net_3', 'net_latest'):  # after one epoch and at the end
        assert _max_difference(_heads(tmp_path, 'one', checkpoint), _heads(tmp_path, 'two', checkpoint)) < 1e-4
    assert _max_difference(_heads(tmp_path, 'one', 'net_3'), _heads(tmp_path, 'one', 'net_latest')) > 1e-3
    assert _written(tmp_path, 'two') == _written(tmp_path, 'one')  # one log, one set of checkpoints
    assert two.count('Validation BAPPS_2afc_val_cnn') == 1  # rank 0 alone validates

    fresh = _heads(tmp_path, 'one', 'net_latest')
    logs = [_train(n, _options(root, tmp_path, name, GLOBAL_BATCH // n, resume=True), tmp_path)
            for n, name in ((1, 'one'), (2, 'two'))]
    for name, log in zip(('one', 'two'), logs):
        assert 'Resuming training from epoch: 0, iter: 3' in log
        assert f'{name}/models/net_3.pth' in log  # the trained heads are reloaded, not the initial ones
    resumed = _heads(tmp_path, 'one', 'net_latest')
    assert _max_difference(resumed, _heads(tmp_path, 'two', 'net_latest')) < 1e-4
    assert _max_difference(resumed, fresh) > 1e-4  # pyiqa restarts the saved epoch: other batches
