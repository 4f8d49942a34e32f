"""Reading images from files for SPIPS, and writing quality maps as heat maps.

Conversions (documented, never silent guesses):

- EXIF orientation is applied (JPEG, PNG, TIFF, WebP);
- grey, palette, CMYK, YCbCr and bilevel images become RGB (grey is repeated);
- 8-bit images are scaled by 1/255, 16-bit ones (grey, RGB, RGBA; PNG or TIFF) by 1/65535 at full
  precision: Pillow reduces 16-bit RGB to 8 bits, so those are decoded with OpenCV;
- a fully opaque alpha channel is dropped; any transparent pixel is an error, since there is no
  right background to composite on.

Unreadable, truncated (even where ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` was set, as importing
``pyiqa.data`` does), multi-frame, oversized and non-image files raise :class:`ImageReadError`
naming the file.

:func:`decode_image` returns the pixels as stored (uint8 or uint16), :func:`unit_images` scales them,
:func:`load_image` does both; decoding processes hand the 4x smaller integers to the scoring one.
"""

import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

#: Suffixes taken as images when scoring folders.
IMAGE_SUFFIXES = {'.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp'}
_SIXTEEN_BIT_MODES = {'I;16', 'I;16B', 'I;16L', 'I;16N'}
_COLOUR_MODES = {'RGB', 'L', 'P', 'CMYK', 'YCbCr', '1'}
#: EXIF orientation -> the transposition that makes the image upright (as ImageOps.exif_transpose).
_ORIENTATION_FIXES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_TRUNCATION_LOCK = threading.Lock()


class ImageReadError(ValueError):
    """An image file that cannot be turned into an RGB tensor in [0, 1]."""


@contextmanager
def _refuse_truncated_images():
    """Make Pillow raise on truncated files, whatever ``LOAD_TRUNCATED_IMAGES`` says elsewhere."""
    with _TRUNCATION_LOCK:
        previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _raw_mode(image: Image.Image) -> str:
    """The pixel layout in the file (e.g. ``'RGB;16B'``), known only before the image is loaded."""
    if not image.tile:
        return image.mode
    args = image.tile[0][3]  # e.g. 'RGB;16B' (PNG) or ('RGB;16N', False, 518) (TIFF)
    return args if isinstance(args, str) else str(args[0] if args else image.mode)


def _drop_opaque_alpha(rgba: np.ndarray, opaque: float, path: Path) -> np.ndarray:
    if (rgba[..., 3] != opaque).any():
        raise ImageReadError(
            f'{path} has transparent pixels; SPIPS compares RGB images: composite it onto a '
            'background first'
        )
    return rgba[..., :3]


def _read_16_bit_colour(path: Path, orientation: int) -> np.ndarray:
    """A 16-bit RGB(A) or grey+alpha file at full precision, upright, as uint16 RGB."""
    import cv2

    array = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ImageReadError(f'cannot decode the 16-bit image {path}')
    array = array[..., [2, 1, 0, 3][: array.shape[2]]]  # OpenCV's BGR(A) -> RGB(A)
    if array.shape[2] == 4:
        array = _drop_opaque_alpha(array, 65535, path)
    fix = _ORIENTATION_FIXES.get(orientation)
    if fix is not None:  # Pillow transposes one 16-bit channel at a time
        array = np.stack([np.asarray(Image.fromarray(c).transpose(fix)) for c in array.transpose(2, 0, 1)], -1)
    return array


def _to_rgb_array(image: Image.Image, path: Path) -> np.ndarray:
    """An upright, loaded 8-bit or 16-bit grey Pillow image as uint8 or uint16 RGB."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return np.repeat(np.asarray(image).astype(np.uint16)[..., None], 3, axis=2)
    if image.mode == 'I':  # 32-bit integers: older Pillow's 16-bit grey PNG, or a 32-bit TIFF
        grey = np.asarray(image)
        if grey.min() < 0 or grey.max() > 65535:
            raise ImageReadError(f'{path} is a 32-bit integer image; save it with 8 or 16 bits')
        return np.repeat(grey[..., None].astype(np.uint16), 3, axis=2)
    if 'A' in image.getbands() or 'a' in image.getbands() or 'transparency' in image.info:
        return _drop_opaque_alpha(np.asarray(image.convert('RGBA')), 255, path)
    if image.mode not in _COLOUR_MODES:
        raise ImageReadError(
            f'{path} has unsupported pixel mode {image.mode!r}: save it as 8- or 16-bit RGB or grey'
        )
    return np.asarray(image.convert('RGB'))


#: The value of full intensity per pixel type of :func:`decode_image`.
FULL_SCALE = {torch.uint8: 255.0, torch.uint16: 65535.0}


def unit_images(pixels: torch.Tensor) -> torch.Tensor:
    r"""Decoded pixels (:func:`decode_image`, stacked) as float32 RGB in [0, 1]: divided by
    :data:`FULL_SCALE` of their type, in one copy (float32 division, as ``array / 255.0`` in NumPy).

    Shape:
        - pixels: :math:`(N, H, W, 3)`, uint8 or uint16.
        - Output: :math:`(N, 3, H, W)`, contiguous.
    """
    if pixels.dtype not in FULL_SCALE:
        raise TypeError(f'unit_images takes uint8 or uint16 pixels, not {pixels.dtype}')
    unit = pixels.permute(0, 3, 1, 2).to(torch.float32, memory_format=torch.contiguous_format)
    return unit.div_(FULL_SCALE[pixels.dtype])


def load_image(path) -> torch.Tensor:
    r"""Read an image file as an RGB float32 tensor in [0, 1] (see the module's conversions):
    :func:`unit_images` of :func:`decode_image`.

    Shape:
        Output: :math:`(1, 3, H, W)`, ``H, W`` upright (after EXIF orientation).
    """
    return unit_images(decode_image(path).unsqueeze(0))


def decode_image(path) -> torch.Tensor:
    r"""Read an image file as its RGB pixels, uint8 (8-bit files) or uint16 (16-bit files), with the
    module's conversions; 4x smaller than :func:`load_image`'s floats, for handing between processes.

    Shape:
        Output: :math:`(H, W, 3)`, ``H, W`` upright (after EXIF orientation).
    """
    path = Path(path)
    try:
        with _refuse_truncated_images(), Image.open(path) as image:
            if getattr(image, 'n_frames', 1) > 1 and image.format != 'MPO':  # MPO: camera JPEG
                raise ImageReadError(
                    f'{path} has {image.n_frames} frames (animation or multi-page file); '
                    'SPIPS scores still images: save the frame to score on its own'
                )
            raw_mode = _raw_mode(image)
            if ';16' in raw_mode and image.mode not in _SIXTEEN_BIT_MODES:
                image.load()  # Pillow keeps 8 of the 16 bits, but this checks the file is complete
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
                array = _read_16_bit_colour(path, orientation)
            else:
                image = ImageOps.exif_transpose(image)
                image.load()
                array = _to_rgb_array(image, path)
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f'image not found: {path}') from None
    except Image.DecompressionBombError as error:
        raise ImageReadError(f'{path} is too large to read safely: {error}') from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise ImageReadError(f'cannot read image {path}: {error}') from None
    return torch.from_numpy(np.require(array, requirements=['C', 'W']))  # Pillow's arrays are read-only


#: PNG text key under which :func:`save_heat_map` records how a map was made.
HEAT_MAP_KEY = 'spips_pyiqa'
_BAR_GAP, _BAR_WIDTH, _LABEL_PAD = 6, 12, 4


def _to_colours(colormap: str, values: np.ndarray) -> np.ndarray:
    """``values`` in [0, 1] through matplotlib's ``colormap`` as uint8 RGB."""
    from matplotlib import colormaps

    return (colormaps[colormap](values)[..., :3] * 255).round().astype(np.uint8)


def _colour_bar(height: int, colormap, low: float, high: float) -> Image.Image:
    """A vertical colour bar for ``height`` pixels, ``high`` at the top, labelled with both ends."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default()
    labels = (f'{high:.3g}', f'{low:.3g}')
    probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
    width = _BAR_GAP + _BAR_WIDTH + _LABEL_PAD + max(int(probe.textlength(t, font=font)) for t in labels) + 2
    bar = Image.new('RGB', (width, height), 'white')
    ramp = _to_colours(colormap, np.linspace(1.0, 0.0, height)[:, None].repeat(_BAR_WIDTH, 1))
    bar.paste(Image.fromarray(ramp), (_BAR_GAP, 0))
    draw = ImageDraw.Draw(bar)
    left = _BAR_GAP + _BAR_WIDTH + _LABEL_PAD
    draw.text((left, 0), labels[0], fill='black', font=font, anchor='la')
    draw.text((left, height - 1), labels[1], fill='black', font=font, anchor='ld')
    return bar


def save_heat_map(quality_map: torch.Tensor, path, colormap: str = 'inferno',
                  value_range: tuple[float, float] | None = None, colour_bar: bool = True,
                  description: str | None = None) -> Path:
    """Write a :math:`(1, 1, H, W)` (or :math:`(H, W)`) map as a colour PNG.

    The map's pixels stay at 1:1 in the left ``W`` columns; ``colour_bar`` adds the scale to the
    right, labelled with its ends. Colours span ``value_range`` (values outside are clipped; a
    fixed range makes maps of several images comparable) or, by default, 0 to this map's maximum.
    ``description`` is kept in the PNG's text chunk :data:`HEAT_MAP_KEY` (see :func:`heat_map_description`).
    """
    from PIL import PngImagePlugin

    values = quality_map.detach().squeeze().cpu().numpy().astype(np.float64)
    low, high = value_range if value_range is not None else (0.0, float(values.max()))
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(values)
    image = Image.fromarray(_to_colours(colormap, scaled))
    if colour_bar:
        bar = _colour_bar(image.height, colormap, low, high)
        framed = Image.new('RGB', (image.width + bar.width, image.height), 'white')
        framed.paste(image, (0, 0))
        framed.paste(bar, (image.width, 0))
        image = framed
    info = PngImagePlugin.PngInfo()
    if description is not None:
        info.add_text(HEAT_MAP_KEY, description)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, pnginfo=info)
    return path


def heat_map_description(path) -> str | None:
    """The ``description`` :func:`save_heat_map` stored in ``path`` (``None``: absent or unreadable)."""
    try:
        with Image.open(path) as image:
            return image.info.get(HEAT_MAP_KEY)  # text chunks before the pixels: no decoding
    except (OSError, UnidentifiedImageError):
        return None
