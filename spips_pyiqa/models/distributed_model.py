"""Distributed data-parallel training for any pyiqa ``GeneralIQAModel``, on CPUs (gloo) or GPUs (nccl).

pyiqa's ``BaseModel.model_to_device`` wraps the network in ``DistributedDataParallel`` with
``device_ids=[torch.cuda.current_device()]``, which fails on a CPU-only machine, and keeps DDP's
per-forward buffer broadcast, which deadlocks when rank 0 alone runs validation (as pyiqa's
``dist_validation`` does). :class:`DistributedModelMixin`, placed before the pyiqa model in the
bases (``class MyModel(DistributedModelMixin, BAPPSModel)``), fixes both and adds one check:

- DDP with ``device_ids`` only on CUDA (``None`` on CPU), and no buffer broadcast (SPIPS' buffers
  are constants: Gaussian windows, backbone normalisation);
- validation on rank 0 through the bare network (no collective that other ranks would wait for);
- at every save, the trainable parameters of all ranks are compared (a checksum gathered from each
  rank) and a divergence raises instead of silently writing rank 0's replica.

Gradients are averaged by DDP, so each step is the step of one process on the union of the ranks'
batches (same global batch = same heads, up to float rounding); pyiqa's ``master_only`` already
keeps checkpoints, training states and logs to rank 0.
"""

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ['DistributedModelMixin', 'ReplicaDivergenceError']


class ReplicaDivergenceError(RuntimeError):
    """The ranks of a distributed run hold different weights (gradients were not synchronised)."""


def _checksum(net: torch.nn.Module) -> torch.Tensor:
    """Three float64 moments of the trainable parameters, position-weighted (order matters)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in net.parameters() if p.requires_grad])
    position = torch.arange(1, flat.numel() + 1, dtype=torch.float64, device=flat.device)
    return torch.stack([flat.sum(), (flat * flat).sum(), (flat * position).sum()])


class DistributedModelMixin:
    """Make a pyiqa training model work under ``torchrun ... --launcher pytorch`` on CPU and GPU."""

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        if not self.opt['dist']:
            return super().model_to_device(net)
        net = net.to(self.device)
        return DistributedDataParallel(
            net,
            device_ids=[torch.cuda.current_device()] if self.device.type == 'cuda' else None,
            broadcast_buffers=False,
            find_unused_parameters=self.opt.get('find_unused_parameters', False),
        )

    def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
        if self.opt['rank'] != 0:
            return
        wrapped, self.net = self.net, self.get_bare_model(self.net)
        try:
            self.nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.net = wrapped

    def check_replicas(self) -> None:
        """Raise :class:`ReplicaDivergenceError` unless every rank holds rank 0's trainable weights."""
        if not self.opt['dist']:
            return
        mine = _checksum(self.get_bare_model(self.net))
        everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(everyone, mine)
        if any(not torch.equal(other, everyone[0]) for other in everyone):
            raise ReplicaDivergenceError(
                'the ranks hold different weights (checksums '
                + ', '.join(str(c.tolist()) for c in everyone) + ')'
            )

    def save(self, epoch, current_iter, *args, **kwargs):
        self.check_replicas()  # every rank calls save at the same iterations
        return super().save(epoch, current_iter, *args, **kwargs)
