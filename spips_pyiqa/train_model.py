r"""Training SPIPS on BAPPS 2AFC judgments inside pyiqa's training loop.

pyiqa's ``BAPPSModel`` already does what LPIPS training needs: it scores both distortions against
the reference and fits :math:`P(\text{prefer } p_1) = \sigma(d_0 - d_1)` (Bradley-Terry) to the
human fraction :math:`h`. SPIPS adds three things, and only these are here:

- after each optimiser step the heads are projected onto non-negative weights (as LPIPS's
  ``clamp_weights``), so SPIPS stays monotone in every distance map (eqs. 9-11); the fusion
  weights are on the simplex by construction (eq. 12);
- LPIPS's learning-rate schedule, ``lr`` for ``n_epochs`` then linear decay to 0 over
  ``n_epochs_decay`` (scheduler ``type: LinearDecayLR``), which torch has no single class for;
- the loss :class:`PreferenceBCELoss`, binary cross-entropy between :math:`\sigma(d_0 - d_1)` and
  :math:`h`, LPIPS's criterion without its small ranking network (one fewer learned part to ship
  and explain; the difference is stated in the README).

References:
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric",
    CVPR 2018 (training protocol). Lao & Yu, "SPIPS", 2025.
"""

import torch
import torch.nn.functional as F
from torch import nn
from pyiqa.models.bapps_model import BAPPSModel
from pyiqa.utils.registry import LOSS_REGISTRY, MODEL_REGISTRY


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LPIPS's schedule: 1 for ``n_epochs`` epochs, then linearly down to 0 over ``n_epochs_decay``."""
    return 1.0 - max(0, epoch - n_epochs + 1) / float(n_epochs_decay + 1)


@LOSS_REGISTRY.register()
class PreferenceBCELoss(nn.Module):
    r"""BCE between the predicted preference for :math:`p_1` and the human fraction :math:`h`.

    Shape:
        - prediction, target: :math:`(N, 1)` probabilities.
        - Output: scalar.
    """

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction = prediction.reshape(target.shape).clamp(1e-6, 1 - 1e-6)
        return self.loss_weight * F.binary_cross_entropy(prediction, target)


@MODEL_REGISTRY.register()
class SPIPSBAPPSModel(BAPPSModel):
    """pyiqa's BAPPS model with non-negative SPIPS heads and LPIPS's learning-rate schedule."""

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
