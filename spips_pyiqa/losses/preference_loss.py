r"""Binary cross-entropy on human 2AFC preferences, for training SPIPS on BAPPS.

LPIPS's criterion without its small ranking network (one fewer learned part to ship and explain;
the difference is stated in the README): pyiqa's ``BAPPSModel`` turns the two distances into the
Bradley-Terry probability :math:`\sigma(d_0 - d_1)` of preferring :math:`p_1`, and this loss
compares it with the fraction :math:`h` of people who did.

References:
    Zhang et al., "The unreasonable effectiveness of deep features as a perceptual metric",
    CVPR 2018 (training protocol).
"""

import torch
import torch.nn.functional as F
from pyiqa.utils.registry import LOSS_REGISTRY
from torch import nn


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
