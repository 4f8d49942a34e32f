"""Launching ``torchrun`` from tests: CPU only, loopback only, a port the OS picks, bounded in time."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def launch_env() -> dict[str, str]:
    """This checkout first on the path; one thread per process (torchrun's default for N > 1)."""
    return {**os.environ, 'PYTHONPATH': str(REPO), 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}


def torchrun(nproc: int, args: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=nproc ARGS`` on 127.0.0.1; the c10d rendezvous binds port 0, so
    the OS hands out a free port (no guessed port that a parallel run could also take)."""
    command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--nnodes=1',
               '--rdzv-backend=c10d', '--rdzv-endpoint=127.0.0.1:0', *args]
    return subprocess.run(command, cwd=cwd, env=launch_env(), capture_output=True, text=True, timeout=timeout,
                          check=False)
