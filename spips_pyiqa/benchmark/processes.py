"""Timing whole commands in fresh processes: one, ``torchrun`` ranks, or several at once.

A user's run pays Python start-up, imports and metric creation, so throughput tables
(:mod:`spips_pyiqa.benchmark.scale`, :mod:`spips_pyiqa.benchmark.scoring`) time commands in
subprocesses that see this checkout first on their path, with a fixed number of torch threads,
and state the machine's load average next to them.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ['launch', 'load_average', 'run_concurrently', 'subprocess_env']

REPO = Path(__file__).resolve().parents[2]


def load_average() -> str:
    """``'1.02 / 0.98 / 0.91'``: the 1, 5 and 15 minute load averages."""
    return ' / '.join(f'{x:.2f}' for x in os.getloadavg())


def subprocess_env(threads: int) -> dict[str, str]:
    """Subprocess environment: this package first on the path, ``threads`` torch threads."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get('PYTHONPATH', '')) if p)
    return {**os.environ, 'PYTHONPATH': path, 'OMP_NUM_THREADS': str(threads)}


def _failed(command: list[str], output: str) -> RuntimeError:
    return RuntimeError(f'{" ".join(command[:6])}... failed: {output[-2000:]}')


def launch(nproc: int, module_args: list[str], cwd: Path, threads: int) -> tuple[subprocess.CompletedProcess, float]:
    """``python ARGS`` (one process) or ``torchrun --nproc_per_node=nproc ARGS`` on loopback; wall time.

    Raises:
        RuntimeError: the command failed, with the end of its output.
    """
    if nproc == 1:
        command = [sys.executable, *module_args]
    else:
        command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '--nnodes=1',
                   '--rdzv-backend=c10d', '--rdzv-endpoint=127.0.0.1:0', *module_args]
    start = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=subprocess_env(threads), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        raise _failed(command, run.stdout + run.stderr)
    return run, wall


def run_concurrently(commands: list[list[str]], cwd: Path, threads: int) -> tuple[list[str], float]:
    """``python ARGS`` for every ``ARGS`` of ``commands`` at the same time; their outputs (stdout and
    stderr) and the wall time until the last one ends.

    Raises:
        RuntimeError: a command failed, with the end of its output.
    """
    began = time.perf_counter()
    running = [subprocess.Popen([sys.executable, *c], cwd=cwd, env=subprocess_env(threads), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in commands]
    outputs = [process.communicate()[0] for process in running]
    wall = time.perf_counter() - began
    for command, process, output in zip(commands, running, outputs):
        if process.returncode != 0:
            raise _failed(command, output)
    return outputs, wall
