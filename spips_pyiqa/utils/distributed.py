"""torch.distributed for commands started by ``torchrun``: who am I, sharding, ordered gathering.

``torchrun --nproc_per_node=N [--nnodes=M --rdzv-endpoint=HOST:PORT] -m spips_pyiqa COMMAND ...``
sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in each process;
:func:`init_distributed` joins the process group from them (gloo for CPU work, nccl for CUDA),
after pinning the process to its local GPU. Without those variables everything here degrades to
one process (rank 0 of 1), so commands need no separate single-process path.

Work is sharded in fixed-size *chunks* dealt round-robin (chunk ``k`` to rank ``k % world_size``):
a chunk holds the same items whatever the world size, so every item is computed in the same
batch, bit for bit, by one process or by many. :func:`gather_from_ranks` collects one object per rank (e.g.
the results of one round of chunks, in chunk order) on every rank.
"""

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ['DistInfo', 'chunk_rounds', 'close_distributed', 'gather_from_ranks', 'init_distributed',
           'launched_by_torchrun', 'local_device']

#: How long a collective waits for the other ranks before failing (instead of hanging).
DEFAULT_TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and writes shared outputs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    """Whether this process was started by ``torchrun`` (or any launcher setting its variables)."""
    return all(name in os.environ for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'))


def _env_info() -> DistInfo:
    if not launched_by_torchrun():
        return DistInfo()
    return DistInfo(int(os.environ['RANK']), int(os.environ['WORLD_SIZE']), int(os.environ['LOCAL_RANK']))


def local_device(device: torch.device, info: DistInfo) -> torch.device:
    """``cuda`` without an index becomes this process's GPU (``cuda:LOCAL_RANK``) under torchrun."""
    if device.type == 'cuda' and device.index is None and info.distributed:
        return torch.device('cuda', info.local_rank % max(1, torch.cuda.device_count()))
    return device


def init_distributed(backend: str | None = None, timeout: timedelta = DEFAULT_TIMEOUT) -> DistInfo:
    """Join the process group described by torchrun's variables; one process without them.

    ``backend`` defaults to ``nccl`` when CUDA is available and ``gloo`` otherwise. With nccl the
    process is pinned to ``cuda:LOCAL_RANK`` first (pyiqa's ``init_dist`` assumes a GPU per rank and
    fails on CPU; this does not). Calling it again returns the same answer.
    """
    info = _env_info()
    if not info.distributed or dist.is_initialized():
        return info
    backend = backend or ('nccl' if torch.cuda.is_available() else 'gloo')
    if backend == 'nccl':
        torch.cuda.set_device(info.local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, init_method='env://', timeout=timeout)
    return info


def close_distributed(wait: bool = True) -> None:
    """Leave the process group; with ``wait``, after a barrier, so no rank leaves while others talk
    (skip it after an error, which the other ranks may not have met)."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def chunk_rounds(n_chunks: int, info: DistInfo) -> list[int | None]:
    """The chunk this rank handles in each round (``None`` where it has none in the last round).

    Every rank gets the same number of rounds, so all of them meet at every :func:`gather_from_ranks`.
    """
    rounds = -(-n_chunks // info.world_size)
    return [k if (k := r * info.world_size + info.rank) < n_chunks else None for r in range(rounds)]


def gather_from_ranks(result: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``result``, indexed by rank (for one round: chunk order), on every rank."""
    if not info.distributed:
        return [result]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, result)
    return gathered
