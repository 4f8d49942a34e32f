"""spips-pyiqa: SPIPS (Scene Perceived Image Perceptual Score, Lao & Yu 2025) for pyiqa.

>>> import pyiqa
>>> metric = pyiqa.create_metric('spips')  # also works without importing spips_pyiqa
>>> score = metric(target, ref)            # (N, 1), lower is better, 0 for identical images
"""

from spips_pyiqa.registration import register

register()

from spips_pyiqa.archs.spips_arch import SPIPS  # noqa: E402
from spips_pyiqa.data.image_io import load_image  # noqa: E402

__all__ = ['SPIPS', 'load_image', 'register']
__version__ = '0.1.0'
