"""Training models registered in pyiqa's ``MODEL_REGISTRY`` (like ``pyiqa/models``).

- ``spips_bapps_model``: ``SPIPSBAPPSModel``, pyiqa's BAPPS model with non-negative heads and
  LPIPS's learning-rate schedule.
- ``distributed_model``: ``DistributedModelMixin``, DDP on CPU (gloo) and GPU (nccl) for any pyiqa
  training model, validation on rank 0 only, replica check at every save.

May import: ``archs``, ``losses``, ``metrics``, ``utils``.
"""

from spips_pyiqa.models.distributed_model import DistributedModelMixin
from spips_pyiqa.models.spips_bapps_model import SPIPSBAPPSModel

__all__ = ['DistributedModelMixin', 'SPIPSBAPPSModel']
