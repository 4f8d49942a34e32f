r"""Real photographs and distortions of known severity, for the demo, tests and fixtures.

The photographs are the ones scikit-image ships (``skimage.data``), so they exist on any machine
that has pyiqa's dependencies, offline included. Distortions follow the LIVE database's classic
three: additive white Gaussian noise, Gaussian blur and JPEG compression; each level is a
severity that grows with the number.
"""

import io
from typing import Callable, Dict

import numpy as np
import skimage.data
import torch
import torchvision.transforms.functional as TF
from PIL import Image

#: scikit-image photographs that are RGB (a few, of different content).
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'immunohistochemistry')


def photo(name: str = 'astronaut', size: int = 0) -> torch.Tensor:
    r"""A ``skimage.data`` RGB photograph as a float tensor in [0, 1], centre-cropped to ``size``.

    Shape:
        Output: :math:`(1, 3, H, W)`, or :math:`(1, 3, \text{size}, \text{size})` when ``size > 0``.
    """
    image = torch.from_numpy(np.ascontiguousarray(getattr(skimage.data, name)()[..., :3]))
    image = image.permute(2, 0, 1).unsqueeze(0).float() / 255
    return TF.center_crop(image, [size, size]) if size else image


def gaussian_noise(image: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    """Additive white Gaussian noise of standard deviation ``sigma``, clipped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(image.shape, generator=generator) * sigma
    return (image + noise.to(image)).clamp(0, 1)


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel of about 6 sigma)."""
    size = 2 * int(3 * sigma) + 1
    return TF.gaussian_blur(image, kernel_size=[size, size], sigma=[sigma, sigma])


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip at ``quality`` (1-95; lower is more severe) through Pillow."""
    out = []
    for single in image:
        array = (single.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format='JPEG', quality=int(quality))
        decoded = np.asarray(Image.open(buffer).convert('RGB'), dtype=np.float32) / 255
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(image)


#: Distortion name -> (function of (image, level), levels from mild to severe).
DISTORTIONS: Dict[str, tuple] = {
    'noise': (gaussian_noise, (0.02, 0.05, 0.1, 0.2)),
    'blur': (gaussian_blur, (0.5, 1.0, 2.0, 4.0)),
    'jpeg': (jpeg, (70, 30, 10, 3)),
}


def distort(image: torch.Tensor, kind: str, severity: int) -> torch.Tensor:
    """Apply distortion ``kind`` at ``severity`` 0 (mild) .. 3 (severe) of :data:`DISTORTIONS`."""
    function: Callable = DISTORTIONS[kind][0]
    return function(image, DISTORTIONS[kind][1][severity])
