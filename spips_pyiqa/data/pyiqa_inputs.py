"""Images handed to ``pyiqa.create_metric('spips')`` as files are read with :func:`load_image`.

pyiqa's ``InferenceModel`` turns a path (``str``), bytes or a PIL image into a tensor with its own
reader (``pyiqa.utils.img_util.imread2tensor``: Pillow's ``convert('RGB')``) before the network
sees it: 16-bit files lose their precision (16-bit grey PNGs saturate to white), EXIF orientation
is ignored and transparent pixels are silently flattened. For SPIPS metrics, a forward pre-hook on
the ``InferenceModel`` instance (registered by :mod:`spips_pyiqa.registration`; pyiqa itself is
not changed) reads ``str`` and ``os.PathLike`` inputs with :func:`load_image` instead: full
precision, EXIF applied, transparent or unreadable files refused with an :class:`ImageReadError`
naming the file. Bytes and PIL images have no path for :func:`load_image`: they go on to pyiqa's
reader only where it is exact (8-bit RGB or grey, no transparency, no EXIF rotation) and are
refused otherwise. Tensors pass unchanged.
"""

import io
import os
from typing import Any, Dict, Tuple

import torch
from PIL import ExifTags, Image

from spips_pyiqa.data.image_io import ImageReadError, load_image

#: InferenceModel.forward(target, ref=None, **kwargs): the arguments that may be images.
IMAGE_ARGUMENTS = ('target', 'ref')


def read_inputs_with_load_image(model: torch.nn.Module) -> None:
    """Make pyiqa ``InferenceModel`` ``model`` read file inputs with :func:`load_image` (idempotent)."""
    if not getattr(model, '_spips_reads_files', False):
        model.register_forward_pre_hook(_read_inputs, with_kwargs=True)
        model._spips_reads_files = True


def _read_inputs(model: torch.nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
    args = tuple(_read(value) for value in args[: len(IMAGE_ARGUMENTS)]) + args[len(IMAGE_ARGUMENTS):]
    kwargs = {key: _read(value) if key in IMAGE_ARGUMENTS else value for key, value in kwargs.items()}
    return args, kwargs


def _read(value: Any) -> Any:
    """A file as a ``(1, 3, H, W)`` tensor; bytes and PIL images checked; anything else unchanged."""
    if isinstance(value, (str, os.PathLike)):
        return load_image(value)
    if isinstance(value, bytes):
        with Image.open(io.BytesIO(value)) as image:
            _refuse_lossy(image, 'image bytes')
    elif isinstance(value, Image.Image):
        _refuse_lossy(value, 'PIL image')
    return value


def _refuse_lossy(image: Image.Image, what: str) -> None:
    rotated = image.getexif().get(ExifTags.Base.Orientation, 1) != 1
    if image.mode in ('RGB', 'L') and 'transparency' not in image.info and not rotated:
        return
    detail = 'an EXIF rotation' if rotated else f'pixel mode {image.mode!r}'
    raise ImageReadError(
        f'{what} with {detail}: pyiqa would convert it to 8-bit RGB without a word; pass a file path, '
        'or a tensor from spips_pyiqa.load_image(path)'
    )
