r"""What every SPIPS training model adds to pyiqa's: non-negative heads and LPIPS's schedule.

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

__all__ = ['SPIPSTrainingMixin', 'linear_decay_factor']


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LPIPS's schedule: 1 for ``n_epochs`` epochs, then linearly down to 0 over ``n_epochs_decay``."""
    return 1.0 - max(0, epoch - n_epochs + 1) / float(n_epochs_decay + 1)


class SPIPSTrainingMixin:
    """Mixed into a pyiqa ``BaseModel`` subclass whose ``self.net`` is a ``SPIPS`` network."""

    @property
    def heads(self) -> torch.nn.Module:
        """The learned part of SPIPS (:class:`~spips_pyiqa.archs.quality_heads.QualityHeads`)."""
        return self.get_bare_model(self.net).quality

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        self.heads.clamp_weights()

    def setup_schedulers(self, scheduler_name='scheduler'):
        options = self.opt['train'].get(scheduler_name)
        if options is None:  # constant learning rate
            return None
        if options.get('type') != 'LinearDecayLR':
            return super().setup_schedulers(scheduler_name)
        n_epochs, n_decay = options['n_epochs'], options['n_epochs_decay']
        for optimizer in self.optimizers:
            self.schedulers.append(
                torch.optim.lr_scheduler.LambdaLR(
                    optimizer, lambda epoch: linear_decay_factor(epoch, n_epochs, n_decay)
                )
            )
