r"""Training SPIPS on BAPPS 2AFC judgments inside pyiqa's training loop.

pyiqa's ``BAPPSModel`` already does what LPIPS training needs: it scores both distortions against
the reference and fits :math:`P(\text{prefer } p_1) = \sigma(d_0 - d_1)` (Bradley-Terry) to the
human fraction :math:`h` with the loss named in the options' ``train.mos_loss_opt``
(:class:`~spips_pyiqa.losses.preference_loss.PreferenceBCELoss` in ours). SPIPS adds only what
the mixins hold: non-negative heads and LPIPS's learning-rate schedule
(:class:`~spips_pyiqa.models.spips_training.SPIPSTrainingMixin`), and training under ``torchrun``
(:class:`~spips_pyiqa.models.distributed_model.DistributedModelMixin`).

References:
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric",
    CVPR 2018 (training protocol). Lao & Yu, "SPIPS", 2025.
"""

from pyiqa.models.bapps_model import BAPPSModel
from pyiqa.utils.registry import MODEL_REGISTRY

from spips_pyiqa.models.distributed_model import DistributedModelMixin
from spips_pyiqa.models.spips_training import SPIPSTrainingMixin


@MODEL_REGISTRY.register()
class SPIPSBAPPSModel(DistributedModelMixin, SPIPSTrainingMixin, BAPPSModel):
    """pyiqa's BAPPS model with non-negative SPIPS heads and LPIPS's learning-rate schedule;
    trains under ``torchrun`` on CPUs and GPUs (:class:`DistributedModelMixin`)."""
