r"""Training SPIPS on mean opinion scores (LIVE, CSIQ, TID2013, KADID-10k, PIPAL...) in pyiqa.

pyiqa's ``GeneralIQAModel`` already trains a full-reference network on a ``GeneralFRDataset``
(``img``, ``ref_img``, ``mos_label``) with the losses named in ``train.mos_loss_opt`` /
``metric_loss_opt`` and validates with SRCC/PLCC/KRCC (``val.metrics``). SPIPS adds:

- **orientation**: SPIPS is a distance (higher = worse). The model outputs
  :math:`s \cdot \mathrm{SPIPS}` with :math:`s = +1` when the training labels are lower-better
  (DMOS: the dataset's ``lower_better: true`` without ``mos_normalize``) and :math:`s = -1`
  otherwise (MOS, or pyiqa's ``mos_normalize``, which makes labels higher-better), so every loss
  and validation correlation sees a prediction oriented like the labels, and agreement is positive;
- a loud warning when the first training batches are anti-correlated with SPIPS under that
  orientation (the likely cause is a wrong ``lower_better``);
- the options ``train.learn`` (which parts learn: ``fusion`` and/or group names; default all
  heads) and ``train.prior_opt: {strength: alpha}`` (:class:`~spips_pyiqa.losses.mos_losses.HeadsPrior`);
- ``train.pairs_within_scene``: pairwise losses compare only images of the same reference;
- a refused split when a scene is on both sides (:func:`~spips_pyiqa.data.mos_prepare.check_scene_split`);
- non-negative heads and LPIPS's schedule (:class:`~spips_pyiqa.models.spips_training.SPIPSTrainingMixin`);
- training under ``torchrun`` (:class:`~spips_pyiqa.models.distributed_model.DistributedModelMixin`).

References:
    Lao & Yu, "SPIPS", 2025, eqs. (9)-(12) (the heads and fusion that learn here).
"""

import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pandas as pd
import torch
from pyiqa.models.general_iqa_model import GeneralIQAModel
from pyiqa.utils import get_root_logger
from pyiqa.utils.registry import MODEL_REGISTRY
from scipy import stats

from spips_pyiqa.data.mos_prepare import MosDataError, check_scene_split
from spips_pyiqa.data.pyiqa_datasets import score_is_badness
from spips_pyiqa.losses.mos_losses import HeadsPrior
from spips_pyiqa.models.distributed_model import DistributedModelMixin
from spips_pyiqa.models.spips_training import SPIPSTrainingMixin

__all__ = ['LabelOrientationWarning', 'SPIPSMOSModel', 'label_sign']

#: Training pairs seen before the orientation check runs, and the SRCC below which it warns.
ORIENTATION_CHECK_PAIRS = 32
ORIENTATION_WARN_SRCC = -0.2


class LabelOrientationWarning(UserWarning):
    """Training labels look anti-correlated with SPIPS under the declared orientation."""


def label_sign(dataset_opt: dict) -> int:
    """+1 when the labels are lower-better (DMOS), -1 when higher-better (MOS, normalised MOS)."""
    try:
        return 1 if score_is_badness(dataset_opt) else -1
    except ValueError as error:
        raise MosDataError(f'{error}: set lower_better (true for DMOS, false for MOS), SPIPS is a distance') from None


def _check_split(dataset_opt: dict) -> None:
    """Refuse a split file whose chosen split has a scene on both sides, or an empty side."""
    if not dataset_opt.get('split_file'):
        return
    meta = pd.read_csv(dataset_opt['meta_info_file'])
    scenes = meta['scene'].astype(str).tolist() if 'scene' in meta else meta.iloc[:, 0].astype(str).tolist()
    with open(dataset_opt['split_file'], 'rb') as handle:
        index = dataset_opt.get('split_index', 1)
        split = pickle.load(handle)[index]
    where = f"{dataset_opt['split_file']} split {index}"
    for phase in ('train', 'val'):
        if not split.get(phase):
            raise MosDataError(f'{where}: the {phase} side is empty')
    check_scene_split(scenes, split, where)


@MODEL_REGISTRY.register()
class SPIPSMOSModel(DistributedModelMixin, SPIPSTrainingMixin, GeneralIQAModel):
    """pyiqa's general IQA model for SPIPS on MOS data; see the module docstring."""

    def init_training_settings(self):
        train_opt, dataset_opt = self.opt['train'], self.opt['datasets']['train']
        _check_split(dataset_opt)
        self.sign = label_sign(dataset_opt)
        self._select_learned(train_opt.get('learn'))
        strength = train_opt.get('prior_opt', {}).get('strength', 0.0)
        self.prior = HeadsPrior(self.heads, strength).to(self.device) if strength else None
        self.within_scene = bool(train_opt.get('pairs_within_scene', False))
        self._seen: list[tuple[np.ndarray, np.ndarray]] = []
        # pyiqa's train_pipeline returns this at the end; it exists only once a validation ran, so a
        # run without validation (all of a small set, e.g. live_dev) would end in an AttributeError
        self.best_metric_results = {}
        super().init_training_settings()

    def _select_learned(self, learn) -> None:
        """Freeze every head part not named in ``learn`` (``None``: all heads learn)."""
        if learn is None:
            return
        parts = {'fusion': self.heads.fusion, **self.heads.heads}
        unknown = set(learn) - set(parts)
        if unknown:
            raise ValueError(f'train.learn: unknown part(s) {sorted(unknown)}; choose from {sorted(parts)}')
        for name, module in parts.items():
            module.requires_grad_(name in learn)

    def feed_data(self, data):
        super().feed_data(data)
        self.scene_ids = None
        if 'ref_img_path' in data:
            names = list(data['ref_img_path'])
            self.scene_ids = torch.tensor([sorted(set(names)).index(n) for n in names])

    def net_forward(self, net):
        """SPIPS oriented like the labels (see :func:`label_sign`)."""
        return self.sign * super().net_forward(net)

    def _criterion(self, criterion, prediction):
        if self.within_scene and self.scene_ids is not None:
            return criterion(prediction, self.gt_mos, groups=self.scene_ids)
        return criterion(prediction, self.gt_mos)

    def optimize_parameters(self, current_iter):
        self.optimizer.zero_grad()
        self.output_score = self.net_forward(self.net)
        losses = OrderedDict()
        if self.cri_mos:
            losses['l_mos'] = self._criterion(self.cri_mos, self.output_score)
        if self.cri_metric:
            losses['l_metric'] = self.cri_metric(self.output_score, self.gt_mos)
        if self.prior is not None:
            losses['l_prior'] = self.prior(self.heads)
        sum(losses.values()).backward()
        self.optimizer.step()
        self.heads.clamp_weights()
        self.log_dict = self.reduce_loss_dict(losses)
        self._check_orientation()

    def _check_orientation(self) -> None:
        """Warn once if the first labels run against SPIPS under the declared orientation."""
        if self._seen is None:
            return
        self._seen.append((self.output_score.detach().cpu().numpy().ravel(), self.gt_mos.cpu().numpy().ravel()))
        prediction, labels = (np.concatenate(x) for x in zip(*self._seen))
        if len(labels) < ORIENTATION_CHECK_PAIRS:
            return
        self._seen = None
        srcc = stats.spearmanr(prediction, labels).statistic
        if np.isfinite(srcc) and srcc < ORIENTATION_WARN_SRCC:
            name = self.opt['datasets']['train'].get('name')
            message = (
                f'SPIPS is anti-correlated with the labels of {name!r} (SRCC {srcc:.2f} over the first '
                f'{len(labels)} training images) under lower_better='
                f"{self.opt['datasets']['train'].get('lower_better')}: the likely cause is a sign "
                'mistake (DMOS needs lower_better: true, MOS lower_better: false)'
            )
            get_root_logger().warning(message)
            warnings.warn(message, LabelOrientationWarning, stacklevel=2)
