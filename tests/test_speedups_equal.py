"""The optimised SPIPS paths equal a straightforward computation of the same equations.

Every speed-up (tiled/banded filtering and its hand-written adjoint, the matrix caches, resizing by
matrices, the fused statistics, the hand-written SSIM backward, chunking, one backbone pass per
image) is compared with
plain, obviously-correct code written here: replicate padding + 2-D convolution, pyiqa's
``to_y_channel``, autograd everywhere. Comparisons run in float64 where the code allows it, so the
tolerances are tight (a wrong index or a wrong derivative is off by orders of magnitude more); the
end-to-end float32 check allows for float32 rounding, which in flat regions is amplified by SSIM's
``1 / C2`` (about 1e-4 of a map value, in the old code as in the new one).
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from pyiqa.utils.color_util import to_y_channel

from spips_pyiqa import SPIPS
from spips_pyiqa.archs import gaussian_filter as filtering
from spips_pyiqa.archs import backbone_layout
from spips_pyiqa.archs.backbone_layout import PlanarConv2d, SpaceToDepthConv2d, WinogradConv2d
from spips_pyiqa.archs import winograd
from spips_pyiqa.archs.winograd import TILES, transform_kernel, winograd_conv2d, winograd_matrices, winograd_pays
from spips_pyiqa.archs import traditional_maps as tm
from spips_pyiqa.archs.deep_features import SEMANTIC_LAYERS
from spips_pyiqa.archs.resize import resize_bilinear
from spips_pyiqa.data.distortions import PHOTOS, distort, photo


# ------------------------------------------------------------------------- straightforward code
def reference_filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Replicate padding, then one 2-D convolution with the outer-product window, per channel."""
    radius = kernel.numel() // 2
    window = torch.outer(kernel, kernel).to(x)[None, None].expand(x.shape[1], 1, -1, -1)
    # F.pad's replicate mode needs padding < size: repeat the edge rows/columns explicitly instead
    rows = torch.arange(-radius, x.shape[-2] + radius).clamp(0, x.shape[-2] - 1)
    cols = torch.arange(-radius, x.shape[-1] + radius).clamp(0, x.shape[-1] - 1)
    return F.conv2d(x[..., rows, :][..., cols], window, groups=x.shape[1])


def reference_traditional_maps(target, ref, kernel):
    """Eqs. (1)-(3) as written: separate filtering of every statistic, one image batch, autograd."""
    size = target.shape[-2:]
    mse = reference_filter((target - ref).pow(2).mean(dim=1, keepdim=True), kernel)
    psnr = -10 * torch.log10(mse.clamp_min(tm.MSE_FLOOR))
    maps = [1 - (psnr / tm.PSNR_MAX_DB).clamp(0, 1)]
    x, y = to_y_channel(target, 1.0, 'ycbcr'), to_y_channel(ref, 1.0, 'ycbcr')
    c1, c2 = 0.01**2, 0.03**2
    for scale in range(tm.MS_SSIM_SCALES):
        if scale:
            x, y = F.avg_pool2d(x, 2, ceil_mode=True), F.avg_pool2d(y, 2, ceil_mode=True)
        mu_x, mu_y = reference_filter(x, kernel), reference_filter(y, kernel)
        var_x = reference_filter(x * x, kernel) - mu_x**2
        var_y = reference_filter(y * y, kernel) - mu_y**2
        cov = reference_filter(x * y, kernel) - mu_x * mu_y
        lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
        cs = (2 * cov + c2) / (var_x + var_y + c2)
        terms = ([lum * cs] if scale == 0 else []) + [lum * cs if scale == tm.MS_SSIM_SCALES - 1 else cs]
        for term in terms:
            distance = 1 - term.clamp(0, 1)
            if distance.shape[-2:] != size:
                distance = F.interpolate(distance, size=size, mode='bilinear', align_corners=False)
            maps.append(distance)
    return torch.cat(maps, dim=1)


def plain_backbone(backbone, image):
    """pyiqa's backbone slices layer by layer, every convolution a plain ``F.conv2d``."""
    outputs = []
    for index in range(1, backbone.N_slices + 1):
        for layer in getattr(backbone, f'slice{index}'):
            if isinstance(layer, nn.Conv2d):
                image = F.conv2d(image, layer.weight, layer.bias, layer.stride, layer.padding)
            else:
                image = layer(image)
        outputs.append(image)
    return outputs


def reference_deep(deep, target, ref):
    """Both images in one concatenated batch through the backbone, LPIPS's formula with eps^2."""
    diffs = []
    for features in plain_backbone(deep.backbone, deep.scaling(torch.cat([target, ref]) * 2 - 1)):
        unit = features / torch.sqrt(features.pow(2).sum(dim=1, keepdim=True) + 1e-20)
        a, b = unit.chunk(2)
        diffs.append((a - b).pow(2))
    return diffs[:-SEMANTIC_LAYERS], diffs[-SEMANTIC_LAYERS:]


def reference_score(model, target, ref):
    """Eqs. (1)-(12) with the straightforward parts above and 1x1 convolutions as heads."""
    perceptual, semantic = reference_deep(model.deep, target, ref)
    maps = {'perceptual': perceptual, 'semantic': semantic,
            'traditional': [reference_traditional_maps(target, ref, model.window.to(target))]}
    distances = [
        sum(F.relu(F.conv2d(m, conv.weight.to(m))).mean(dim=(2, 3)) for conv, m in zip(head.convs, maps[g]))
        for g, head in model.quality.heads.items()
    ]
    return sum(w * d for w, d in zip(model.quality.fusion.weights.to(target), distances))


def photo_pair(height, width, batch, seed=0, dtype=torch.float32):
    refs, targets = [], []
    for i in range(batch):
        image = photo(PHOTOS[(i + seed) % len(PHOTOS)])
        top, left = (image.shape[-2] - height) // 2, (image.shape[-1] - width) // 2
        ref = image[..., top : top + height, left : left + width].contiguous()
        refs.append(ref)
        targets.append(distort(ref, ('noise', 'blur', 'jpeg')[(i + seed) % 3], 1 + i % 2))
    return torch.cat(targets).to(dtype), torch.cat(refs).to(dtype)


# ------------------------------------------------------------------------------------ filtering
@pytest.mark.parametrize('shape', [(2, 3, 64, 64), (1, 2, 131, 257), (2, 1, 300, 97), (1, 1, 5, 200), (1, 2, 4, 4)])
@pytest.mark.parametrize('method', ['banded', 'tiled', 'tiled, 3 planes per call', 'conv'])
def test_filter_and_its_adjoint_equal_replicate_convolution(monkeypatch, shape, method):
    if method.startswith('tiled, '):  # plane groups: the tiled method on more planes than a call takes
        monkeypatch.setattr(filtering, 'TILED_GROUP_PIXELS', 3 * shape[-2] * shape[-1])
        method = 'tiled'
    kernel = tm.gaussian_kernel_1d().double()
    x = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    upstream = torch.rand(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = filtering.gaussian_filter(x, kernel, method)
    theirs = reference_filter(x, kernel)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    grad_ours, = torch.autograd.grad(ours, x, upstream)
    grad_theirs, = torch.autograd.grad(theirs, x, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-12)


def test_filter_cache_follows_the_kernel():
    """Cached matrices belong to one kernel: another kernel, or the same one changed in place,
    gets its own."""
    x = torch.rand(1, 1, 120, 130, dtype=torch.float64)
    for method in ('banded', 'tiled'):
        kernel = tm.gaussian_kernel_1d().double()
        first = filtering.gaussian_filter(x, kernel, method)
        other = tm.gaussian_kernel_1d(11, 3.0).double()
        torch.testing.assert_close(filtering.gaussian_filter(x, other, method), reference_filter(x, other), rtol=0, atol=1e-12)
        kernel.mul_(2)  # in place: a new version of the same tensor
        torch.testing.assert_close(filtering.gaussian_filter(x, kernel, method), 2 * 2 * first, rtol=0, atol=1e-12)


def test_filter_method_is_chosen_per_device_and_size():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert filtering.filter_method(64, cpu) == 'banded' and filtering.filter_method(256, cpu) == 'tiled'
    assert filtering.filter_method(1024, cuda) == 'banded' and filtering.filter_method(4096, cuda) == 'conv'


@pytest.mark.parametrize('size, out', [((32, 32), (64, 64)), ((34, 47), (67, 93)), ((3, 6), (67, 93)), ((1, 2), (64, 70))])
def test_resize_equals_interpolate(size, out):
    x = torch.rand(2, 1, *size, dtype=torch.float64, requires_grad=True)
    ours, theirs = resize_bilinear(x, out), F.interpolate(x, size=out, mode='bilinear', align_corners=False)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    upstream = torch.rand(ours.shape, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(ours, x, upstream)[0], torch.autograd.grad(theirs, x, upstream)[0], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- traditional maps
def test_luma_equals_pyiqa_to_y_channel():
    target, _ = photo_pair(67, 93, 2)
    torch.testing.assert_close(tm.luma(target), to_y_channel(target, 1.0, 'ycbcr'), rtol=0, atol=1e-6)


def test_ssim_terms_backward_is_the_derivative():
    stats = torch.rand(2, 4, 7, 9, dtype=torch.float64)
    stats[:, 2] += (stats[:, :2] ** 2).sum(dim=1)  # E[x^2 + y^2] above mu_x^2 + mu_y^2
    assert torch.autograd.gradcheck(tm._SSIMTerms.apply, (stats.requires_grad_(),))


@pytest.mark.parametrize('height, width, batch', [(64, 64, 5), (67, 93, 2), (131, 257, 1)])
def test_traditional_maps_and_gradients_equal_reference(monkeypatch, height, width, batch):
    """float64, real photographs: 64 px (banded), odd sizes, > 96 px (tiled); chunks of 2 images."""
    monkeypatch.setattr(tm, 'CPU_CHUNK_PIXELS', 2 * height * width)
    target, ref = photo_pair(height, width, batch, dtype=torch.float64)
    kernel = tm.gaussian_kernel_1d().double()
    target.requires_grad_(True)
    ours = tm.traditional_maps(target, ref, kernel)
    theirs = reference_traditional_maps(target, ref, kernel)
    assert ours.shape == (batch, tm.TRADITIONAL_CHANNELS, height, width)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-10)
    upstream = torch.rand(ours.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grad_ours, = torch.autograd.grad(ours, target, upstream)
    grad_theirs, = torch.autograd.grad(theirs, target, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-10 * grad_theirs.abs().max().item())


ALL = (True,) * tm.TRADITIONAL_CHANNELS


@pytest.mark.parametrize('needed', [ALL, (True,) + (False,) * 6, (False,) * 4 + (True,) * 3, (False, True) + (False,) * 5,
                                    (True, False, True, False, False, True, False)])
@pytest.mark.parametrize('height, width, batch', [(64, 64, 5), (67, 93, 2), (131, 257, 1)])
def test_traditional_means_equal_means_of_the_maps(monkeypatch, height, width, batch, needed):
    """Means taken without upsampling, and only of the needed channels (others 0), equal the means
    of the reference maps; so do their gradients."""
    monkeypatch.setattr(tm, 'CPU_CHUNK_PIXELS', 2 * height * width)
    target, ref = photo_pair(height, width, batch, seed=2, dtype=torch.float64)
    kernel = tm.gaussian_kernel_1d().double()
    target.requires_grad_(True)
    ours = tm.traditional_means(target, ref, kernel, needed)
    theirs = reference_traditional_maps(target, ref, kernel).mean(dim=(2, 3)) * torch.tensor(needed, dtype=torch.float64)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    upstream = torch.rand(ours.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    grad_ours, = torch.autograd.grad(ours, target, upstream)
    grad_theirs, = torch.autograd.grad(theirs, target, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-10 * grad_theirs.abs().max().item())


# ------------------------------------------------------------------------------ deep and whole
@pytest.fixture(scope='module')
def spips():
    return SPIPS(net='alex', heads_version='0.1')


@pytest.mark.parametrize('size', [(64, 80), (64, 64)])  # AlexNet's last maps: 3x4 (direct), 3x3 (Winograd)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('ref_grad', [False, True])
def test_deep_distances_equal_one_batched_pass(spips, ref_grad, channels_last, size):
    """Values and gradients (the hand-written backward of eqs. 4-6; to the reference too, as with a
    trained backbone) equal autograd through LPIPS's formula and plain convolutions, float64, both
    memory layouts, with and without the Winograd convolutions."""
    deep = copy.deepcopy(spips.deep).double()
    target, ref = photo_pair(*size, 2, dtype=torch.float64)
    if not channels_last:  # the layout the CPU backbone runs in, or plain NCHW (CUDA)
        original = deep.features
        deep.features = lambda image: tuple(f.contiguous() for f in original(image))
    target.requires_grad_(True)
    ref.requires_grad_(ref_grad)
    ours, theirs = deep(target, ref), reference_deep(deep, target, ref)
    for a, b in zip(ours[0] + ours[1], theirs[0] + theirs[1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    upstream = [torch.rand(d.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
                for i, d in enumerate(theirs[0] + theirs[1])]
    inputs = [target, ref] if ref_grad else [target]
    grad_ours = torch.autograd.grad(ours[0] + ours[1], inputs, upstream)
    grad_theirs = torch.autograd.grad(theirs[0] + theirs[1], inputs, upstream)
    for a, b in zip(grad_ours, grad_theirs):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10 * b.abs().max().item())


@pytest.mark.parametrize('kernel, stride, padding', [(11, 4, 2), (7, 2, 3), (3, 2, 1), (5, 3, 0)])
@pytest.mark.parametrize('height, width', [(64, 64), (67, 93), (131, 257), (23, 30)])
def test_space_to_depth_convolution_equals_conv2d(kernel, stride, padding, height, width):
    """Values and input gradients equal ``F.conv2d`` (float64) at sizes that are and are not whole
    blocks; without a gradient to compute it is the plain convolution."""
    conv = nn.Conv2d(3, 8, kernel, stride, padding).double()
    fast = SpaceToDepthConv2d(3, 8, kernel, stride, padding).double()
    fast.load_state_dict(conv.state_dict())
    image = torch.rand(2, 3, height, width, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    image.requires_grad_(True)
    ours, theirs = fast(image), conv(image)
    assert ours.shape == theirs.shape
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    upstream = torch.rand(theirs.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grad_ours, = torch.autograd.grad(ours, image, upstream)
    grad_theirs, = torch.autograd.grad(theirs, image, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-12)


def test_planar_convolution_equals_conv2d_and_returns_channels_last(spips):
    conv = getattr(spips.deep.backbone.slice2, '3')  # modules keep torchvision's indices as names
    assert isinstance(conv, PlanarConv2d) and isinstance(getattr(spips.deep.backbone.slice1, '0'), SpaceToDepthConv2d)
    backbone = spips.deep.backbone
    assert all(isinstance(getattr(getattr(backbone, f'slice{i}'), str(j)), WinogradConv2d) for i, j in ((3, 6), (4, 8), (5, 10)))
    conv = copy.deepcopy(conv).double()
    features = torch.rand(2, 64, 31, 29, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    features.requires_grad_(True)
    ours = conv(features)
    theirs = F.conv2d(features, conv.weight, conv.bias, conv.stride, conv.padding)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    grad_ours, = torch.autograd.grad(ours.sum(), features)
    grad_theirs, = torch.autograd.grad(theirs.sum(), features)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize('m, r, points', [(2, 3, (0, 1, -1)), (TILES[3][0], 3, TILES[3][1]), (4, 3, (0, 1, -1, 0.5, -0.5)), (3, 5, (0, 1, -1, 0.5, -0.5, 2))])
def test_winograd_matrices_compute_a_correlation(m, r, points):
    """1-D F(m, r): :math:`A^T [(G g) \\odot (B^T d)]` is the valid correlation of a tile with g."""
    out_t, kernel_t, in_t = (torch.from_numpy(x) for x in winograd_matrices(m, r, points))
    tiles = torch.rand(50, m + r - 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kernel = torch.rand(r, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = ((kernel_t @ kernel) * (tiles @ in_t.T)) @ out_t.T
    torch.testing.assert_close(ours, F.conv1d(tiles[:, None], kernel[None, None])[:, 0], rtol=0, atol=1e-12)


def test_winograd_matrices_need_distinct_points():
    with pytest.raises(ValueError, match='needs 5 distinct points'):
        winograd_matrices(4, 3, (0, 1, -1, 0.5))
    with pytest.raises(ValueError, match='needs 5 distinct points'):
        winograd_matrices(4, 3, (0, 1, -1, 0.5, 1))


@pytest.mark.parametrize('shape', [(2, 5, 15, 15), (1, 3, 3, 3), (2, 4, 1, 1), (1, 6, 17, 9), (1, 2, 5, 30), (1, 2, 30, 5)])
@pytest.mark.parametrize('channels_last', [False, True])
def test_winograd_convolution_and_its_gradient_equal_conv2d(shape, channels_last):
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(7, shape[1], 3, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(7, dtype=torch.float64, generator=generator)
    x = torch.randn(shape, dtype=torch.float64, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format).requires_grad_(True)
    ours, theirs = winograd_conv2d(x, transform_kernel(weight), bias, 3), F.conv2d(x, weight, bias, padding=1)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    upstream = torch.randn(theirs.shape, dtype=torch.float64, generator=generator)
    grad_ours, = torch.autograd.grad(ours, x, upstream)
    grad_theirs, = torch.autograd.grad(theirs, x, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize('turn_bytes', [1, 25 * 7 * 8 * 4, 25 * 7 * 8 * 30])  # a tile row, 4 tiles, 3+ images
@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])  # float32: oneDNN's packed weights
@pytest.mark.parametrize('channels', [(5, 7), (6, 6)])  # square: forward and gradient products of one size
def test_winograd_in_turns_equals_conv2d(monkeypatch, turn_bytes, dtype, channels):
    """Batches done in turns of images, or of rows of tiles within an image, give the same
    convolution and input gradient."""
    monkeypatch.setattr(winograd, 'TURN_BYTES', turn_bytes)
    generator = torch.Generator().manual_seed(3)
    weight = torch.randn(channels[1], channels[0], 3, 3, dtype=dtype, generator=generator)
    bias = torch.randn(channels[1], dtype=dtype, generator=generator)
    x = torch.randn(5, channels[0], 17, 9, dtype=dtype, generator=generator).requires_grad_(True)
    kernel = transform_kernel(weight)
    ours, theirs = winograd_conv2d(x, kernel, bias, 3), F.conv2d(x, weight, bias, padding=1)
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5 * theirs.abs().max().item()
    torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance)
    upstream = torch.randn(theirs.shape, dtype=dtype, generator=generator)
    grad_ours, = torch.autograd.grad(ours, x, upstream)
    grad_theirs, = torch.autograd.grad(theirs, x, upstream)
    torch.testing.assert_close(grad_ours, grad_theirs, rtol=0, atol=tolerance * 10)


def test_winograd_refuses_a_kernel_that_wants_a_gradient():
    kernel = transform_kernel(torch.randn(4, 4, 3, 3)).requires_grad_(True)
    with pytest.raises(ValueError, match='must be a constant'):
        winograd_conv2d(torch.randn(1, 4, 6, 6), kernel, None, 3)


def test_winograd_pays_on_maps_its_tiles_cover_closely():
    assert [winograd_pays(n, n, 3) for n in (3, 5, 7, 9, 11, 15, 31, 63)] == [True, False, False, True, True, True, True, True]
    assert not winograd_pays(3, 4, 3) and winograd_pays(3, 6, 3)


def _spy_on_winograd(monkeypatch) -> list:
    calls = []

    def spy(*args):
        calls.append(args[0].shape)
        return winograd_conv2d(*args)

    monkeypatch.setattr(backbone_layout, 'winograd_conv2d', spy)
    return calls


def test_winograd_layers_follow_their_weights(spips, monkeypatch):
    """The transformed weight follows in-place edits (eagerly), loading (at once, before any call)
    and dtype changes; trainable weights and maps Winograd does not pay on get ``F.conv2d``."""
    calls = _spy_on_winograd(monkeypatch)
    conv = copy.deepcopy(getattr(spips.deep.backbone.slice3, '6'))
    assert isinstance(conv, WinogradConv2d)
    x = torch.rand(2, 192, 15, 15, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=torch.channels_last)

    def plain(image):
        return F.conv2d(image, conv.weight, conv.bias, padding=1)

    def assert_rounding_close(ours, theirs, tolerance=1e-5):  # rounding: this much of the largest output
        torch.testing.assert_close(ours, theirs, rtol=0, atol=tolerance * theirs.abs().max().item())

    assert_rounding_close(conv(x), plain(x))
    with torch.no_grad():
        conv.weight.mul_(-2)
    assert_rounding_close(conv(x), plain(x))
    other = {'weight': torch.rand_like(conv.weight), 'bias': torch.rand_like(conv.bias)}
    conv.load_state_dict(other)
    torch.testing.assert_close(conv.transformed_weight, transform_kernel(other['weight']), rtol=0, atol=0)
    assert len(calls) == 2
    conv.double()
    assert_rounding_close(conv(x.double()), plain(x.double()), tolerance=1e-13)  # refreshed in float64
    small = x[..., :7, :7].double()  # 3x3 tiles would cover 9x9: 1.65x the output
    assert torch.equal(conv(small), plain(small)) and len(calls) == 3
    conv.weight.requires_grad_(True)
    ours, theirs = (torch.autograd.grad(f(x.double()).square().sum(), conv.weight)[0] for f in (conv, plain))
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert len(calls) == 3


def test_winograd_weight_refreshed_under_inference_mode_serves_autograd(spips):
    """A refresh inside ``torch.inference_mode`` (weights edited, then a scoring call) must not leave
    an inference tensor behind: a later loss call saves the transformed weight for its backward."""
    conv = copy.deepcopy(getattr(spips.deep.backbone.slice3, '6'))
    with torch.no_grad():
        conv.weight.mul_(0.5)
    x = torch.rand(1, 192, 15, 15).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv(x)
    image = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(conv(image).sum(), image)
    theirs, = torch.autograd.grad(F.conv2d(image, conv.weight, conv.bias, padding=1).sum(), image)
    torch.testing.assert_close(grad, theirs, rtol=0, atol=1e-5 * theirs.abs().max().item())


def test_winograd_layer_refuses_what_it_cannot_compute():
    for kwargs in ({'stride': 2, 'padding': 1}, {'padding': 0}, {'padding': 2, 'kernel_size': 5}, {'padding': 1, 'groups': 2}):
        with pytest.raises(ValueError, match='stride-1 "same"'):
            WinogradConv2d(4, 4, **{'kernel_size': 3, **kwargs})


@pytest.mark.parametrize('mode', ['eval', 'train'])
@pytest.mark.parametrize('negative', [None, 'perceptual', 'semantic'])
def test_deep_means_give_the_score_of_the_maps(spips, mode, negative):
    """Where the deep heads' weights are non-negative the score takes each squared difference's
    mean (never stored); score and gradients to the target and, in training, to every head weight
    equal the float64 score from the full maps. A negative weight, where the ReLU may cut, gets
    the full maps (and there the means would differ)."""
    model = copy.deepcopy(spips)
    with torch.no_grad():
        for group in ('perceptual', 'semantic'):
            for conv in model.quality.heads[group].convs:  # uneven weights: each channel's mean counts
                conv.weight.mul_(torch.rand(conv.weight.shape, generator=torch.Generator().manual_seed(5)) * 2)
        if negative is not None:
            model.quality.heads[negative].convs[0].weight[0, :3] = -5.0
    model.train(mode == 'train')
    target, ref = photo_pair(64, 72, 2, seed=4)
    reference = copy.deepcopy(model).double()
    target64, ref64 = target.double().requires_grad_(True), ref.double()
    target.requires_grad_(True)
    score = model(target, ref)
    expected = reference_score(reference, target64, ref64)
    torch.testing.assert_close(score.double(), expected, rtol=1e-5, atol=1e-7)
    ours = torch.autograd.grad(score.sum(), [target, *model.quality.parameters()])
    theirs = torch.autograd.grad(expected.sum(), [target64, *reference.quality.parameters()])
    for a, b in zip(ours if mode == 'train' else ours[:1], theirs):
        torch.testing.assert_close(a.double(), b, rtol=0, atol=2e-3 * b.abs().max().item())
    if negative is not None:  # the case is real: pooling before the ReLU would give another score
        group = ('perceptual', 'semantic').index(negative)
        means = reference.deep(target64, ref64, mean=True)[group][0]
        maps = reference.deep(target64, ref64)[group][0]
        weight = reference.quality.heads[negative].convs[0].weight
        pooled = F.relu(F.conv2d(means, weight)).flatten()
        per_pixel = F.relu(F.conv2d(maps, weight)).mean(dim=(1, 2, 3))
        assert (pooled - per_pixel).abs().max() > 1e-4 * per_pixel.abs().max()


@pytest.mark.parametrize('height, width, batch', [(64, 64, 3), (97, 131, 1)])
def test_spips_score_and_gradient_equal_float64_reference(spips, height, width, batch):
    target, ref = photo_pair(height, width, batch, seed=1)
    target.requires_grad_(True)
    score = spips(target, ref)
    grad, = torch.autograd.grad(score.sum(), target)
    reference = copy.deepcopy(spips).double()
    target64 = target.detach().double().requires_grad_(True)
    expected = reference_score(reference, target64, ref.double())
    expected_grad, = torch.autograd.grad(expected.sum(), target64)
    torch.testing.assert_close(score.double(), expected, rtol=1e-5, atol=1e-7)
    # float32 rounding, amplified in flat regions by SSIM's 1 / C2, leaves ~1e-4 of the largest
    # gradient; a real mistake (a border, a derivative) is of the order of the gradient itself
    torch.testing.assert_close(grad.double(), expected_grad, rtol=0, atol=2e-3 * expected_grad.abs().max().item())


@pytest.mark.parametrize('weights', [
    None,  # label-free heads: every channel weighs, the score uses the means of all seven maps
    (0.0, 0.0, 0.0, 0.0, 0.9, 1.8, 0.9),  # as the shipped v0.2 heads: zero channels are skipped
    (-0.3, 0.5, 0.01, 0.1, 0.1, 0.08, 0.04),  # a negative weight: the ReLU cuts, maps are needed
    (0.0,) * 7,  # no traditional map weighs: none is computed in eval mode
])
@pytest.mark.parametrize('mode', ['eval', 'train'])
def test_score_from_map_means_equals_the_maps(spips, weights, mode):
    """Where the traditional head is monotone the score uses the maps' means (eval mode: only the
    channels that weigh); the score, its gradient to the target and, in training, to every head
    weight equal eqs. (1)-(12) computed in float64 from the full maps."""
    model = copy.deepcopy(spips)
    if weights is not None:
        with torch.no_grad():
            model.quality.heads['traditional'].convs[0].weight.copy_(torch.tensor(weights).view(1, -1, 1, 1))
    model.train(mode == 'train')
    reference = copy.deepcopy(model).double()
    target, ref = photo_pair(64, 72, 2, seed=3)
    target64, ref64 = target.double().requires_grad_(True), ref.double()
    target.requires_grad_(True)
    score = model(target, ref)
    expected = reference_score(reference, target64, ref64)
    if weights is not None and weights[0] < 0:  # the case is real: pooling before the ReLU would differ
        weight = reference.quality.heads['traditional'].convs[0].weight
        pooled = F.relu(tm.traditional_means(target64, ref64, reference.window) @ weight.flatten())
        maps = reference_traditional_maps(target64, ref64, reference.window)
        assert (pooled - F.relu(F.conv2d(maps, weight)).mean(dim=(1, 2, 3))).abs().max() > 1e-3
    torch.testing.assert_close(score.double(), expected, rtol=1e-5, atol=1e-7)
    ours = torch.autograd.grad(score.sum(), [target, *model.quality.parameters()])
    theirs = torch.autograd.grad(expected.sum(), [target64, *reference.quality.parameters()])
    for a, b in zip(ours if mode == 'train' else ours[:1], theirs):  # float32 rounding: see above
        torch.testing.assert_close(a.double(), b, rtol=0, atol=2e-3 * b.abs().max().item())


@pytest.mark.parametrize('method, size', [('banded', (9, 12)), ('tiled', (40, 70)), ('conv', (9, 12))])
def test_filter_operator_passes_torch_library_checks(method, size):
    """The filter's custom operator (what ``torch.compile`` calls as it is): its declared output
    layout, its autograd formula and its traceability agree with what it computes."""
    x = torch.rand(2, 3, *size, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    kernel = tm.gaussian_kernel_1d().double()
    torch.library.opcheck(filtering._filter_op, (x, kernel, method, False))
    torch.library.opcheck(filtering._filter_op, (x, kernel, method, True))


@pytest.mark.parametrize('shape', [(2, 15, 15, 5), (1, 3, 3, 4)])
def test_winograd_operator_passes_torch_library_checks(shape):
    """Likewise for the Winograd convolution's operator, forward and input gradient."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, generator=generator).requires_grad_(True)
    kernel = transform_kernel(torch.randn(7, shape[-1], 3, 3, dtype=torch.float64, generator=generator))
    torch.library.opcheck(winograd._winograd_op, (x, kernel, torch.randn(7, dtype=torch.float64), 3, False))
    grad = torch.randn(*shape[:3], 7, dtype=torch.float64, generator=generator).requires_grad_(True)
    torch.library.opcheck(winograd._winograd_op, (grad, kernel, None, 3, True))
