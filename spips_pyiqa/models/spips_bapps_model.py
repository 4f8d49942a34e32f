r"""Training SPIPS on BAPPS 2AFC judgments inside pyiqa's training loop.

pyiqa's ``BAPPSModel`` already does what LPIPS training needs: it scores both distortions against
the reference and fits :math:`P(\text{prefer } p_1) = \sigma(d_0 - d_1)` (Bradley-Terry) to the
human fraction :math:`h` with the loss named in the options' ``train.mos_loss_opt``
(:class:`~spips_pyiqa.losses.preference_loss.PreferenceBCELoss` in ours). SPIPS adds two things,
and only these are here:

- after each optimiser step the heads are projected onto non-negative weights (as LPIPS's
  ``clamp_weights``), so SPIPS stays monotone in every distance map (eqs. 9-11); the fusion
  weights are on the simplex by construction (eq. 12);
- LPIPS's learning-rate schedule, ``lr`` for ``n_epochs`` then linear decay to 0 over
  ``n_epochs_decay`` (scheduler ``type: LinearDecayLR``), which torch has no single class for.

References:
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric",
    CVPR 2018 (training protocol). Lao & Yu, "SPIPS", 2025.
"""

import torch
from pyiqa.models.bapps_model import BAPPSModel
from pyiqa.utils.registry import MODEL_REGISTRY

from spips_pyiqa.models.distributed_model import DistributedModelMixin


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LPIPS's schedule: 1 for ``n_epochs`` epochs, then linearly down to 0 over ``n_epochs_decay``."""
    return 1.0 - max(0, epoch - n_epochs + 1) / float(n_epochs_decay + 1)


@MODEL_REGISTRY.register()
class SPIPSBAPPSModel(DistributedModelMixin, BAPPSModel):
    """pyiqa's BAPPS model with non-negative SPIPS heads and LPIPS's learning-rate schedule;
    trains under ``torchrun`` on CPUs and GPUs (:class:`DistributedModelMixin`)."""

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        self.get_bare_model(self.net).quality.clamp_weights()

    def setup_schedulers(self, scheduler_name='scheduler'):
        options = self.opt['train'][scheduler_name]
        if options.get('type') != 'LinearDecayLR':
            return super().setup_schedulers(scheduler_name)
        n_epochs, n_decay = options['n_epochs'], options['n_epochs_decay']
        for optimizer in self.optimizers:
            self.schedulers.append(
                torch.optim.lr_scheduler.LambdaLR(
                    optimizer, lambda epoch: linear_decay_factor(epoch, n_epochs, n_decay)
                )
            )
