"""oneDNN's prepacked weights for the Winograd products (``spips_pyiqa/archs/prepacked.py``).

A packed copy must give ``F.conv2d``'s values for any input size, never outlive or misrepresent its
weight (an in-place edit, another tensor at the same address), and the plain path must serve what
oneDNN cannot.
"""

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F

from spips_pyiqa.archs import prepacked
from spips_pyiqa.archs.prepacked import PACKS_PER_NAME, grouped_pointwise_conv

GROUPS = 25

needs_onednn = pytest.mark.skipif(not prepacked.ONEDNN_CALLS, reason="this torch build lacks oneDNN's packing calls")


def _weight(in_channels: int = 8, out_channels: int = 12, dtype=torch.float32) -> torch.Tensor:
    generator = torch.Generator().manual_seed(in_channels * out_channels)
    return torch.randn(GROUPS * out_channels, in_channels, 1, 1, generator=generator, dtype=dtype)


def _tiles(tiles: int, in_channels: int = 8, dtype=torch.float32) -> torch.Tensor:
    """A channels-last (1, 25 C, tiles, 1) input, as the Winograd products see it."""
    generator = torch.Generator().manual_seed(tiles)
    return torch.randn(1, tiles, 1, GROUPS * in_channels, generator=generator, dtype=dtype).permute(0, 3, 1, 2)


def _packed_names(weight: torch.Tensor) -> list:
    entry = prepacked._ENTRIES.get(weight.data_ptr())
    return [] if entry is None or entry.source() is not weight else list(entry.packed)


@needs_onednn
@pytest.mark.parametrize('tiles', [1, 9, 50, 200, 441])
def test_packed_products_equal_the_plain_convolution(tiles):
    weight = _weight()
    x = _tiles(tiles)
    ours = grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    torch.testing.assert_close(ours, F.conv2d(x, weight, groups=GROUPS), rtol=1e-6, atol=1e-6)
    assert _packed_names(weight) == [('forward', tuple(x.shape))]  # the packed path ran


@needs_onednn
def test_each_input_size_gets_its_own_copy_and_few_are_kept():
    """oneDNN expects a layout per input size: a copy packed for another size is never used."""
    weight = _weight()
    sizes = [50, 200, 50, 9]
    for tiles in sizes:
        x = _tiles(tiles)
        torch.testing.assert_close(grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS),
                                   F.conv2d(x, weight, groups=GROUPS), rtol=1e-6, atol=1e-6)
    assert [shape[2] for _, shape in _packed_names(weight)] == [50, 9][-PACKS_PER_NAME:]


@needs_onednn
def test_names_keep_separate_copies_of_derived_weights():
    """The input gradient's products use the same owner under another name, with a derived weight."""
    weight = _weight(8, 12)
    swapped = _weight(12, 8)
    x, y = _tiles(20, 8), _tiles(20, 12)
    grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    ours = grouped_pointwise_conv(y, weight, 'input gradient', lambda: swapped, GROUPS)
    torch.testing.assert_close(ours, F.conv2d(y, swapped, groups=GROUPS), rtol=1e-6, atol=1e-6)
    assert [name for name, _ in _packed_names(weight)] == ['forward', 'input gradient']


@needs_onednn
def test_a_weight_edited_in_place_is_packed_afresh():
    weight = _weight()
    x = _tiles(50)
    grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    with torch.no_grad():
        weight.mul_(-2)
    torch.testing.assert_close(grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS),
                               F.conv2d(x, weight, groups=GROUPS), rtol=1e-6, atol=1e-6)


@needs_onednn
def test_an_edited_weight_releases_its_earlier_copies():
    weight = _weight()
    x = _tiles(50)
    grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    first = weakref.ref(prepacked._ENTRIES[weight.data_ptr()].packed[('forward', tuple(x.shape))])
    with torch.no_grad():
        weight.add_(1)
    grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    gc.collect()
    assert first() is None


@needs_onednn
def test_copies_go_with_their_weight():
    """A dropped weight takes its copies along; a new weight at the same address is packed anew."""
    weight = _weight()
    x = _tiles(50)
    grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    address = weight.data_ptr()
    assert address in prepacked._ENTRIES
    del weight
    gc.collect()
    assert address not in prepacked._ENTRIES
    other = _weight(8, 12) * 3  # may land at the same address
    torch.testing.assert_close(grouped_pointwise_conv(x, other, 'forward', lambda: other, GROUPS),
                               F.conv2d(x, other, groups=GROUPS), rtol=1e-6, atol=1e-6)


def test_plain_path_for_other_dtypes():
    weight = _weight(dtype=torch.float64)
    x = _tiles(9, dtype=torch.float64)
    ours = grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS)
    torch.testing.assert_close(ours, F.conv2d(x, weight, groups=GROUPS), rtol=0, atol=0)
    assert _packed_names(weight) == []


def test_plain_path_where_onednn_refuses(monkeypatch):
    """Packing that fails (another build, an unsupported shape) is remembered and the plain call runs."""
    calls = []

    def refuse(*args):
        calls.append(args)
        raise RuntimeError('unsupported')

    monkeypatch.setattr(torch._C._nn, 'mkldnn_reorder_conv2d_weight', refuse, raising=False)
    monkeypatch.setattr(prepacked, 'ONEDNN_CALLS', True)
    weight = _weight()
    x = _tiles(9)
    for _ in range(2):
        torch.testing.assert_close(grouped_pointwise_conv(x, weight, 'forward', lambda: weight, GROUPS),
                                   F.conv2d(x, weight, groups=GROUPS), rtol=0, atol=0)
    assert len(calls) == 1
