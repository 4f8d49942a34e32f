"""``python -m spips_pyiqa.train -opt options/train_spips.yml``: pyiqa's training loop, rooted here.

pyiqa's own ``python -m pyiqa.train`` puts ``experiments/`` inside site-packages (its root is the
package's parent) while its auto-resume looks in ``./experiments``; this launcher runs the same
``train_pipeline`` with the current directory as root, like ``python pyiqa/train.py`` from a pyiqa
source checkout. All options (``-opt``, ``--auto_resume``, ``--force_yml``, ``--launcher``...) are
pyiqa's.

Distributed: ``torchrun --nproc_per_node=N -m spips_pyiqa.train -opt OPTIONS --launcher pytorch``.
pyiqa's ``init_dist`` pins every rank to a GPU (``torch.cuda.set_device``) and always uses nccl, so it
fails on CPUs; here the process group is joined by :func:`~spips_pyiqa.utils.distributed.init_distributed`
instead (nccl when the options use GPUs, gloo otherwise) before pyiqa parses the options, which
then finds the rank and world size as usual. The model's side (DDP without CUDA device ids,
validation on rank 0) is :class:`~spips_pyiqa.models.distributed_model.DistributedModelMixin`.

Resuming (``path.resume_state`` or ``--auto_resume``): pyiqa's ``load_resume_state`` maps the state
onto ``torch.cuda.current_device()`` (fails without CUDA) and, for a model whose network option is
``network`` rather than ``network_<name>``, never reloads the trained weights (it would resume the
optimiser with the initial heads). :func:`load_resume_state` replaces it for this run: the state
goes to the run's device and ``path.pretrain_network`` points at ``models/net_<iter>.pth``.
"""

import contextlib
import io
import os
import sys
from datetime import timedelta
from os import path as osp

import pyiqa.train
import torch
import yaml
from pyiqa.train import train_pipeline
from pyiqa.utils import check_resume, scandir
from pyiqa.utils.options import parse_options

from spips_pyiqa.registration import register, register_metric_functions, register_training
from spips_pyiqa.utils.distributed import close_distributed, init_distributed, launched_by_torchrun

#: Ranks wait at most this long for each other (rank 0 validates alone while the others wait).
TRAINING_TIMEOUT = timedelta(hours=4)


def _launcher(argv: list[str]) -> str:
    """The value of pyiqa's ``--launcher`` in ``argv`` (``none`` when absent)."""
    for i, arg in enumerate(argv):
        if arg == '--launcher' and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith('--launcher='):
            return arg.split('=', 1)[1]
    return 'none'


def _without_launcher(argv: list[str]) -> list[str]:
    """``argv`` with pyiqa's ``--launcher X`` replaced by ``--launcher none``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == '--launcher':
            skip = True
        elif not arg.startswith('--launcher='):
            out.append(arg)
    return out + ['--launcher', 'none']


def _backend(option_file: str) -> str:
    """nccl when the options train on GPUs (``num_gpu`` not 0) and CUDA exists, gloo otherwise."""
    num_gpu = (yaml.safe_load(open(option_file)) or {}).get('num_gpu', 'auto')
    return 'nccl' if torch.cuda.is_available() and num_gpu != 0 else 'gloo'


def parse_training_options(root_path: str) -> tuple[dict, object]:
    """pyiqa's ``parse_options``, joining the process group ourselves for ``--launcher pytorch``."""
    launcher = _launcher(sys.argv[1:])
    if launcher == 'none' and launched_by_torchrun() and int(os.environ['WORLD_SIZE']) > 1:
        # N independent trainings would write the same experiment folder at once
        raise SystemExit('error: started by torchrun with several processes but without '
                         '--launcher pytorch: add it (or run one process)')
    if launcher != 'pytorch':
        return parse_options(root_path, is_train=True)
    argv = sys.argv
    option_file = argv[argv.index('-opt') + 1] if '-opt' in argv else None
    init_distributed(_backend(option_file) if option_file else None, timeout=TRAINING_TIMEOUT)
    sys.argv = [argv[0], *_without_launcher(argv[1:])]
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pyiqa prints 'Disable distributed.'
            opt, args = parse_options(root_path, is_train=True)
    finally:
        sys.argv = argv
    opt['dist'] = True  # rank and world size were read from the joined group
    args.launcher = 'pytorch'
    return opt, args


def load_resume_state(opt: dict) -> dict | None:
    """pyiqa's ``load_resume_state`` on any device, reloading the trained ``network`` too."""
    state_path = opt['path'].get('resume_state') or None
    if opt['auto_resume']:
        folder = osp.join('experiments', opt['name'], 'training_states')
        states = list(scandir(folder, suffix='state', full_path=False)) if osp.isdir(folder) else []
        if states:
            state_path = osp.join(folder, f'{max(float(s.split(".state")[0]) for s in states):.0f}.state')
            opt['path']['resume_state'] = state_path
    if state_path is None:
        return None
    device = torch.device('cuda', torch.cuda.current_device()) if opt['num_gpu'] != 0 else torch.device('cpu')
    resume_state = torch.load(state_path, map_location=device, weights_only=True)
    check_resume(opt, resume_state['iter'])
    if 'network' in opt:  # check_resume only handles network_<name> options
        opt['path']['pretrain_network'] = osp.join(opt['path']['models'], f'net_{resume_state["iter"]}.pth')
    return resume_state


def main() -> None:
    register()  # also works from a source checkout, without the entry points installed
    register_training()
    register_metric_functions()
    opt, args = parse_training_options(os.getcwd())
    pyiqa.train.load_resume_state = load_resume_state
    try:
        train_pipeline(os.getcwd(), opt, args)
    finally:
        close_distributed(wait=False)  # rank 0 may still validate; nothing left to synchronise


if __name__ == '__main__':
    main()
