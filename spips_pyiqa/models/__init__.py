"""Training models registered in pyiqa's ``MODEL_REGISTRY`` (like ``pyiqa/models``).

- ``spips_bapps_model``: ``SPIPSBAPPSModel``, pyiqa's BAPPS model with non-negative heads and
  LPIPS's learning-rate schedule.

May import: ``archs``, ``losses``, ``metrics``, ``utils``.
"""

from spips_pyiqa.models.spips_bapps_model import SPIPSBAPPSModel

__all__ = ['SPIPSBAPPSModel']
