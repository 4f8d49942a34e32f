"""Training criteria registered in pyiqa's ``LOSS_REGISTRY`` (like ``pyiqa/losses``).

- ``preference_loss``: binary cross-entropy on BAPPS 2AFC preferences;
- ``mos_losses``: pairwise Bradley-Terry loss on MOS pairs and the prior toward the starting heads.

May import: ``spips_pyiqa.metrics`` (and torch, pyiqa).
"""

from spips_pyiqa.losses.mos_losses import HeadsPrior, PairwisePreferenceLoss
from spips_pyiqa.losses.preference_loss import PreferenceBCELoss

__all__ = ['HeadsPrior', 'PairwisePreferenceLoss', 'PreferenceBCELoss']
