"""Training models registered in pyiqa's ``MODEL_REGISTRY`` (like ``pyiqa/models``).

- ``spips_training``: what every SPIPS training model adds (non-negative heads, LPIPS's schedule);
- ``spips_bapps_model``: ``SPIPSBAPPSModel``, training on BAPPS 2AFC judgments;
- ``spips_mos_model``: ``SPIPSMOSModel``, training on mean opinion scores (any ``GeneralFRDataset``);
- ``distributed_model``: ``DistributedModelMixin``, DDP on CPU (gloo) and GPU (nccl) for any pyiqa
  training model, validation on rank 0 only, replica check at every save.

May import: ``archs``, ``losses``, ``metrics``, ``data``, ``utils``.
"""

from spips_pyiqa.models.distributed_model import DistributedModelMixin
from spips_pyiqa.models.spips_bapps_model import SPIPSBAPPSModel
from spips_pyiqa.models.spips_mos_model import SPIPSMOSModel

__all__ = ['DistributedModelMixin', 'SPIPSBAPPSModel', 'SPIPSMOSModel']
