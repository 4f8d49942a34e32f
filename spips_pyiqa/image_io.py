"""Reading images from files for SPIPS, and writing quality maps as heat maps.

Conversions (documented, never silent guesses): EXIF orientation is applied; grey and palette
images become RGB; 16-bit images are scaled by 1/65535 (8-bit by 1/255); an alpha channel is an
error, since there is no right background to composite on. Unreadable, truncated and non-image
files raise :class:`ImageReadError` naming the file.
"""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

#: Suffixes taken as images when scoring folders.
IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'}
_SIXTEEN_BIT_MODES = {'I;16', 'I;16B', 'I;16L', 'I'}


class ImageReadError(ValueError):
    """An image file that cannot be turned into an RGB tensor in [0, 1]."""


def _to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(grey[..., None], 3, axis=2)
    if 'A' in image.getbands() or (image.mode == 'P' and 'transparency' in image.info):
        raise ImageReadError(
            f'{path} has an alpha channel; SPIPS compares RGB images: flatten it first'
        )
    if image.mode not in ('RGB', 'L', 'P', 'CMYK', 'YCbCr', 'LAB', '1'):
        raise ImageReadError(f'{path} has unsupported pixel mode {image.mode!r}')
    return np.asarray(image.convert('RGB'), dtype=np.float32) / 255.0


def load_image(path) -> torch.Tensor:
    r"""Read an image file as an RGB float tensor in [0, 1].

    Shape:
        Output: :math:`(1, 3, H, W)`.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            image.load()
            array = _to_rgb_array(image, path)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f'image not found: {path}') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f'cannot read image {path}: {error}') from None
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def save_heat_map(quality_map: torch.Tensor, path, colormap: str = 'inferno') -> Path:
    """Write a :math:`(1, 1, H, W)` (or :math:`(H, W)`) map as a colour PNG, max-normalised."""
    from matplotlib import colormaps

    values = quality_map.detach().squeeze().cpu().numpy()
    values = values / values.max() if values.max() > 0 else values
    rgb = (colormaps[colormap](values)[..., :3] * 255).round().astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    return path
