"""Loading (target, reference) image files in chunks with a DataLoader, for scoring at scale.

Pairs are cut into fixed-size chunks (``chunk k`` = pairs ``k*size .. (k+1)*size - 1``); a
DataLoader item is one whole chunk, decoded by :func:`~spips_pyiqa.data.image_io.decode_image` in
worker processes (``num_workers``) ahead of use (``prefetch_factor``). Workers hand over the
integer pixels, a quarter of the bytes of float32 images, and :func:`unit_batch` converts a batch
at a time in the scoring process (measured, ``score`` of 20 pairs of 2040x1356 with two workers on
a 2-core machine: 17.8-19.0 s instead of 27.5 s, system time 5.7-7.3 s instead of 17.2 s; pyiqa's
command line took 17.4-18.4 s). A file that cannot be read does not raise in the worker (the
DataLoader would re-raise it as a multi-line "Caught ... in DataLoader worker" error): its slot
carries the error message instead, so the caller reports the first failure in pair order, exactly
as a one-at-a-time loop would.
Within a chunk, :func:`same_size_groups` batches the pairs whose images share a size and pixel
type, up to :data:`MAX_BATCH_PIXELS` per batch.
"""

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from spips_pyiqa.data.image_io import ImageReadError, decode_image, unit_images

__all__ = ['LoadedPair', 'PairChunks', 'chunk_loader', 'default_workers', 'same_size_groups', 'unit_batch']


@dataclass
class LoadedPair:
    """One pair of a chunk: its index in the pair list, and its images or why they are unreadable.

    Shape:
        target, ref: :math:`(H, W, 3)`, uint8 or uint16 pixels (:func:`~spips_pyiqa.data.image_io.decode_image`;
        ``None`` when ``error`` is set).
    """

    index: int
    target: torch.Tensor | None = None
    ref: torch.Tensor | None = None
    error: str | None = None


class PairChunks(Dataset):
    """Item ``k``: the :class:`LoadedPair` list of chunk ``k`` of ``pairs`` (given as indices)."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], chunks: Sequence[Sequence[int]]):
        self.pairs = list(pairs)
        self.chunks = [list(chunk) for chunk in chunks]

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, k: int) -> list[LoadedPair]:
        loaded = []
        for index in self.chunks[k]:
            target_path, ref_path = self.pairs[index]
            try:
                loaded.append(LoadedPair(index, decode_image(target_path), decode_image(ref_path)))
            except ImageReadError as error:
                loaded.append(LoadedPair(index, error=str(error)))
        return loaded


def _identity(item):
    return item


#: Decoding processes by default when a rank has more than one chunk, except on CPU with
#: :data:`FEW_CORES` cores or fewer, where decoders only take cores from the metric (measured, ``score``
#: of 20 pairs on a 2-core machine, 3 interleaved runs: 2040x1356 18.4-18.7 s with no worker, 20.0-20.5 s
#: with 2; 512x512 4.8 s, 4.8-5.0 s; pyiqa's command line 17.8-19.4 s and 4.2-4.8 s).
MAX_DEFAULT_WORKERS, FEW_CORES = 2, 2


def default_workers(chunks: int, device: torch.device) -> int:
    """DataLoader processes for ``chunks`` chunks of one rank scored on ``device``: none for a single
    chunk (nothing to decode ahead) or on a CPU of :data:`FEW_CORES` cores or fewer, else
    :data:`MAX_DEFAULT_WORKERS`."""
    if chunks <= 1 or (torch.device(device).type == 'cpu' and (os.cpu_count() or 1) <= FEW_CORES):
        return 0
    return MAX_DEFAULT_WORKERS


def chunk_loader(dataset: PairChunks, order: Sequence[int], num_workers: int, prefetch: int = 2) -> DataLoader:
    """A DataLoader yielding the chunks ``order`` of ``dataset`` in that order, decoded ahead."""
    workers = min(num_workers, len(order))
    return DataLoader(
        dataset,
        batch_size=None,  # an item is already a whole chunk
        sampler=list(order),
        num_workers=workers,
        prefetch_factor=prefetch if workers else None,
        collate_fn=_identity,
        persistent_workers=False,
    )


#: A batch holds at most this many target pixels (at least one pair): larger batches of large
#: images run slower than one image at a time, their intermediates far beyond the caches (measured,
#: ``spips`` by ``score`` on a 2-core CPU: 8 pairs of 2040x1356 took 15.4 s in one batch, 11.3 s one by
#: one; 32 pairs of 512 px 7.0 s in batches of 16, 6.5 s in batches of 4-8).
MAX_BATCH_PIXELS = 2**21


def same_size_groups(chunk: Sequence[LoadedPair], max_pixels: int = MAX_BATCH_PIXELS) -> list[list[LoadedPair]]:
    """Readable pairs grouped by (target size and type, ref size and type), in order of first
    appearance, each group cut into batches of at most ``max_pixels`` target pixels (at least one
    pair each)."""
    groups: dict[tuple, list[LoadedPair]] = {}
    for pair in chunk:
        if pair.error is None:
            key = (tuple(pair.target.shape), pair.target.dtype, tuple(pair.ref.shape), pair.ref.dtype)
            groups.setdefault(key, []).append(pair)
    batches = []
    for group in groups.values():
        size = max(1, max_pixels // group[0].target[..., 0].numel())
        batches += [group[start:start + size] for start in range(0, len(group), size)]
    return batches


def unit_batch(group: Sequence[LoadedPair]) -> tuple[torch.Tensor, torch.Tensor]:
    """The targets and the references of one :func:`same_size_groups` batch as float32 in [0, 1].

    Shape:
        Output: two :math:`(N, 3, H, W)` tensors, ``N = len(group)``.
    """
    return tuple(unit_images(torch.stack([getattr(pair, side) for pair in group])) for side in ('target', 'ref'))
