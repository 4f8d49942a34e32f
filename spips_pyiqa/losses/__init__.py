"""Training criteria registered in pyiqa's ``LOSS_REGISTRY`` (like ``pyiqa/losses``).

- ``preference_loss``: binary cross-entropy on BAPPS 2AFC preferences.

May import: ``spips_pyiqa.metrics`` (and torch, pyiqa).
"""

from spips_pyiqa.losses.preference_loss import PreferenceBCELoss

__all__ = ['PreferenceBCELoss']
