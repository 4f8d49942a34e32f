"""One test per SPIPS equation against an independent reference (NumPy/SciPy in float64).

Each reference is written from the paper's definition (Lao & Yu 2025, eqs. 1-12) and the documented
choices of this package (replicate "same" padding, Gaussian window 11/1.5, BT.601 luma, PSNR clipped
at 50 dB, maps flipped to distances), never by calling the function under test. SciPy's
``correlate1d(mode='nearest')`` is replicate padding, so the whole map is compared, borders included.
Inputs are chosen so that every branch matters: non-uniform errors, the 50 dB clip and the [0, 1]
clip of SSIM reached, local means that differ (so ``l`` != 1 and ``l * cs`` != ``cs``), and fusion
weights that all differ (so a reordering of lambda changes the score).
"""

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from scipy.ndimage import correlate1d

from spips_pyiqa.archs.deep_features import DeepFeatureDistances, normalize_channels
from spips_pyiqa.archs.groups import GROUPS, group_channels
from spips_pyiqa.archs.quality_heads import GroupHead, QualityHeads, SimplexFusion
from spips_pyiqa.archs.spips_arch import SPIPS
from spips_pyiqa.archs.traditional_maps import (
    MS_SSIM_SCALES,
    gaussian_kernel_1d,
    psnr_distance_map,
    ssim_distance_maps,
    traditional_maps,
)
from spips_pyiqa.data.distortions import photo

K1, K2, PSNR_MAX_DB = 0.01, 0.03, 50.0
#: float32 against float64: SSIM's variances cancel in flat regions (up to 1.9e-4 measured here).
MAP_ATOL = 5e-4


# ----------------------------------------------------------------------------- references (NumPy)
def _window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    coords = np.arange(size) - (size - 1) / 2
    kernel = np.exp(-(coords**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter with replicate padding, same size. image: (H, W)."""
    return correlate1d(correlate1d(image, _window(), axis=0, mode='nearest'), _window(), axis=1, mode='nearest')


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 Y in [16/255, 235/255] of (3, H, W) RGB in [0, 1]."""
    return (65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2] + 16.0) / 255.0


def _ssim_terms(x: np.ndarray, y: np.ndarray):
    """SSIM's luminance ``l`` and contrast-structure ``cs`` maps (data range 1)."""
    c1, c2 = K1**2, K2**2
    mx, my = _blur(x), _blur(y)
    vx, vy, cxy = _blur(x * x) - mx**2, _blur(y * y) - my**2, _blur(x * y) - mx * my
    return (2 * mx * my + c1) / (mx**2 + my**2 + c1), (2 * cxy + c2) / (vx + vy + c2)


def _bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize with half-pixel centres (align_corners=False), (h, w) -> (height, width)."""
    def taps(out_size, in_size):
        source = np.maximum((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, in_size - 1), source - low

    r0, r1, wr = taps(height, image.shape[0])
    c0, c1, wc = taps(width, image.shape[1])
    rows = image[r0] * (1 - wr)[:, None] + image[r1] * wr[:, None]
    return rows[:, c0] * (1 - wc) + rows[:, c1] * wc


def _halve(image: np.ndarray) -> np.ndarray:
    """2x2 mean (even sizes)."""
    return image.reshape(image.shape[0] // 2, 2, image.shape[1] // 2, 2).mean(axis=(1, 3))


# ----------------------------------------------------------------------------- test images
@pytest.fixture(scope='module')
def pair():
    """96x128 photo pair with three bands: identical rows (the 50 dB clip and SSIM = 1), a
    contrast/brightness change plus noise (``l`` < 1, non-uniform error), and an inverted band
    (negative ``cs``: SSIM's clip at 0)."""
    ref = TF.center_crop(photo('astronaut'), [96, 128]).double()
    target = ref.clone()
    noise = torch.randn(ref[..., 32:64, :].shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    target[..., 32:64, :] = (0.6 * ref[..., 32:64, :] + 0.25 + 0.03 * noise).clamp(0, 1)
    target[..., 64:, :] = 1 - ref[..., 64:, :]
    return target.float(), ref.float()


def _np(image: torch.Tensor) -> np.ndarray:
    return image[0].double().numpy()


# ----------------------------------------------------------------------------- eqs. (1)-(3)
def test_gaussian_window():
    np.testing.assert_allclose(gaussian_kernel_1d().double().numpy(), _window(), atol=1e-7, rtol=0)


def test_eq1_psnr_map(pair):
    target, ref = pair
    x, y = _np(target), _np(ref)
    mse = _blur(((x - y) ** 2).mean(axis=0))
    psnr = -10 * np.log10(np.maximum(mse, 1e-10))
    expected = 1 - np.clip(psnr / PSNR_MAX_DB, 0, 1)
    assert (psnr > PSNR_MAX_DB).any() and (psnr < PSNR_MAX_DB).any(), 'the 50 dB clip must be reached and not'
    assert expected.std() > 0.1, 'the error must be non-uniform'
    actual = psnr_distance_map(target, ref, gaussian_kernel_1d())
    assert actual.shape == (1, 1, 96, 128)
    np.testing.assert_allclose(actual[0, 0].double().numpy(), expected, atol=1e-5, rtol=0)


def test_eq2_ssim_map_and_eq3_every_ms_ssim_channel(pair):
    """SSIM = 1 - clip(l cs) at full size; MS-SSIM: 1 - clip(cs) at scales 1..S-1, 1 - clip(l cs) at
    S, each computed on the 2x2-averaged luma and bilinearly resized back (Wang et al. 2003)."""
    target, ref = pair
    x, y = _luma(_np(target)), _luma(_np(ref))
    height, width = x.shape
    l, cs = _ssim_terms(x, y)
    assert (l * cs < 0).any() and (l * cs > 0.99).any(), 'both ends of the [0, 1] clip must be reached'
    expected = [1 - np.clip(l * cs, 0, 1)]
    for scale in range(MS_SSIM_SCALES):
        if scale:
            x, y = _halve(x), _halve(y)
        l, cs = _ssim_terms(x, y)
        assert np.abs(l * cs - cs).max() > 0.05, f'scale {scale + 1}: l must matter for this test to bite'
        similarity = l * cs if scale == MS_SSIM_SCALES - 1 else cs
        expected.append(_bilinear(1 - np.clip(similarity, 0, 1), height, width))
    luma_target = torch.from_numpy(_luma(_np(target)))[None, None].float()
    luma_ref = torch.from_numpy(_luma(_np(ref)))[None, None].float()
    actual = ssim_distance_maps(luma_target, luma_ref, gaussian_kernel_1d())
    assert actual.shape == (1, 1 + MS_SSIM_SCALES, height, width)
    for channel, reference in enumerate(expected):
        np.testing.assert_allclose(
            actual[0, channel].double().numpy(), reference, atol=MAP_ATOL, rtol=0,
            err_msg=f'channel {channel} (0: SSIM, {channel}: MS-SSIM scale {channel})',
        )


def test_traditional_stack_order_and_luma(pair):
    """The 7-channel stack is [PSNR on RGB, SSIM, MS-SSIM 1..5] with SSIM on BT.601 luma."""
    target, ref = pair
    stack = traditional_maps(target, ref, gaussian_kernel_1d())
    assert stack.shape == (1, 2 + MS_SSIM_SCALES, 96, 128)
    torch.testing.assert_close(stack[:, :1], psnr_distance_map(target, ref, gaussian_kernel_1d()))
    l, cs = _ssim_terms(_luma(_np(target)), _luma(_np(ref)))
    np.testing.assert_allclose(stack[0, 1].double().numpy(), 1 - np.clip(l * cs, 0, 1), atol=MAP_ATOL, rtol=0)


# ----------------------------------------------------------------------------- eqs. (4)-(8)
def test_eq4_5_channel_norm():
    features = torch.randn(2, 48, 5, 7, generator=torch.Generator().manual_seed(1)) * 3
    features[0, :, 0, 0] = 0  # an all-zero vector stays zero (eps), without NaN
    features[1, :, 0, 0] = 0
    features[1, 0, 0, 0] = 1e-10  # |F| = eps: F / sqrt(|F|^2 + eps^2) = 1 / sqrt(2) exactly here
    f = features.double().numpy()
    expected = f / np.sqrt((f**2).sum(axis=1, keepdims=True) + 1e-20)
    np.testing.assert_allclose(normalize_channels(features).double().numpy(), expected, atol=1e-6, rtol=0)
    assert normalize_channels(features)[1, 0, 0, 0].item() == pytest.approx(2**-0.5, rel=1e-5)


@pytest.fixture(scope='module')
def alex_features():
    return DeepFeatureDistances('alex')


def test_eq6_8_squared_differences_and_group_split(alex_features):
    """Delta^l = (F_t / ||F_t|| - F_r / ||F_r||)^2 per layer; layers 1..L-2 perceptual, L-1..L semantic."""
    ref = photo('chelsea', 64)
    target = (0.8 * ref + 0.1).clamp(0, 1)
    perceptual, semantic = alex_features(target, ref)
    with torch.no_grad():
        taps = [
            [f.double().numpy() for f in alex_features.backbone(alex_features.scaling(image * 2 - 1))]
            for image in (target, ref)
        ]
    assert [d.shape[1] for d in perceptual] == [64, 192, 384]
    assert [d.shape[1] for d in semantic] == [256, 256]
    for layer, (actual, ft, fr) in enumerate(zip(perceptual + semantic, *taps)):
        unit_t = ft / np.sqrt((ft**2).sum(axis=1, keepdims=True))
        unit_r = fr / np.sqrt((fr**2).sum(axis=1, keepdims=True))
        expected = (unit_t - unit_r) ** 2
        assert expected.max() > 1e-3, layer
        np.testing.assert_allclose(actual.detach().double().numpy(), expected, atol=1e-5, rtol=0, err_msg=f'layer {layer + 1}')


@pytest.mark.parametrize('net, perceptual, semantic', [
    ('alex', (64, 192, 384), (256, 256)),
    ('vgg', (64, 128, 256), (512, 512)),
    ('squeeze', (64, 128, 256, 384, 384), (512, 512)),
])
def test_eq7_8_group_channels(net, perceptual, semantic):
    assert group_channels(net, GROUPS) == {'traditional': (7,), 'perceptual': perceptual, 'semantic': semantic}
    assert list(group_channels(net, ('semantic', 'traditional', 'perceptual'))) == list(GROUPS)


# ----------------------------------------------------------------------------- eqs. (9)-(12)
def _head_reference(weights, maps):
    """d_g = sum over maps of the spatial mean of ReLU(w^T Delta); weights (C,), maps (N, C, H, W)."""
    quality = [np.maximum(np.einsum('c,nchw->nhw', w, m), 0) for w, m in zip(weights, maps)]
    return sum(q.mean(axis=(1, 2)) for q in quality), quality


def test_eq9_11_group_head():
    generator = torch.Generator().manual_seed(2)
    channels = (3, 5)
    head = GroupHead(channels)
    with torch.no_grad():  # mixed signs, so the ReLU matters; maps of different resolutions
        for conv in head.convs:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
    maps = [torch.rand(2, 3, 6, 9, generator=generator), torch.rand(2, 5, 3, 4, generator=generator)]
    weights = [conv.weight.detach().double().numpy().reshape(-1) for conv in head.convs]
    expected, expected_maps = _head_reference(weights, [m.double().numpy() for m in maps])
    distance, quality_maps = head(maps)
    assert distance.shape == (2, 1)
    assert any((np.einsum('c,nchw->nhw', w, m.double().numpy()) < 0).any() for w, m in zip(weights, maps))
    np.testing.assert_allclose(distance[:, 0].detach().double().numpy(), expected, atol=1e-6, rtol=0)
    for actual, reference in zip(quality_maps, expected_maps):
        np.testing.assert_allclose(actual[:, 0].detach().double().numpy(), reference, atol=1e-6, rtol=0)


def test_eq12_fusion_binds_each_lambda_to_its_group():
    """score = sum_g softmax(theta)_g d_g, where theta's i-th logit belongs to GROUPS[i]."""
    generator = torch.Generator().manual_seed(3)
    channels = group_channels('alex', GROUPS)
    heads = QualityHeads(channels)
    logits = torch.tensor([0.9, -0.4, 0.1])
    with torch.no_grad():
        heads.fusion.logits.copy_(logits)
    maps = {g: [torch.rand(1, c, 4 + i, 5, generator=generator) for i, c in enumerate(cs)] for g, cs in channels.items()}
    lam = np.exp(logits.double().numpy()) / np.exp(logits.double().numpy()).sum()
    lam_of = dict(zip(GROUPS, lam))
    d_of = {
        g: _head_reference(
            [c.weight.detach().double().numpy().reshape(-1) for c in heads.heads[g].convs],
            [m.double().numpy() for m in maps[g]],
        )[0][0]
        for g in GROUPS
    }
    assert len({round(d, 4) for d in d_of.values()}) == 3 and len({round(v, 4) for v in lam}) == 3
    score, distances, _ = heads(maps)
    for g in GROUPS:
        assert distances[g].item() == pytest.approx(d_of[g], abs=1e-6)
    assert score.item() == pytest.approx(sum(lam_of[g] * d_of[g] for g in GROUPS), abs=1e-6)
    torch.testing.assert_close(heads.fusion.weights.double(), torch.from_numpy(lam), atol=1e-6, rtol=0)


def test_eq12_simplex_fusion_of_maps():
    fusion = SimplexFusion([0.2, 0.3, 0.5])
    torch.testing.assert_close(fusion.weights, torch.tensor([0.2, 0.3, 0.5]))
    parts = [torch.full((1, 1, 2, 2), v) for v in (1.0, 10.0, 100.0)]
    torch.testing.assert_close(fusion(parts), torch.full((1, 1, 2, 2), 0.2 + 3.0 + 50.0))


@pytest.fixture(scope='module')
def spips():
    return SPIPS(net='alex', heads_version='0.1')


def test_eq12_end_to_end_score_and_fused_map(spips):
    """The network's score and fused map use lambda of the group they name (shipped heads)."""
    ref = photo('coffee', 64)
    target = (0.7 * ref + 0.2).clamp(0, 1)
    lam = dict(zip(spips.groups, spips.quality.fusion.weights.tolist()))
    assert len({round(v, 3) for v in lam.values()}) == 3, 'shipped lambdas must differ for this test'
    with torch.no_grad():
        distances = spips.group_distances(target, ref)
        score = spips(target, ref)
        maps = spips.quality_maps(target, ref)
    assert len({round(d.item(), 3) for d in distances.values()}) == 3
    assert score.item() == pytest.approx(sum(lam[g] * distances[g].item() for g in GROUPS), abs=1e-6)
    torch.testing.assert_close(maps['spips'], sum(lam[g] * maps[g] for g in GROUPS), atol=1e-6, rtol=0)


@pytest.mark.parametrize('weights', [[0.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [[0.5, 0.5]]])
def test_fusion_weights_must_be_positive_vector(weights):
    """lambda = softmax(theta) is positive: a zero or negative initial weight (log of it) is refused."""
    with pytest.raises(ValueError, match='fusion weights must be positive'):
        SimplexFusion(weights)


def test_clamp_weights_projects_heads_onto_nonnegative_orthant():
    """Training keeps heads non-negative (monotone score): negatives become 0, the rest is kept."""
    heads = QualityHeads({'perceptual': (3,), 'semantic': (2,)})
    values = {'perceptual': [-0.5, 0.25, 2.0], 'semantic': [0.75, -3.0]}
    with torch.no_grad():
        for group, head in heads.heads.items():
            head.convs[0].weight.copy_(torch.tensor(values[group]).view(1, -1, 1, 1))
    heads.clamp_weights()  # outside no_grad, as after an optimiser step
    for group, head in heads.heads.items():
        expected = torch.tensor(values[group]).clamp(min=0).view(1, -1, 1, 1)
        assert torch.equal(head.convs[0].weight.detach(), expected)
        assert head.convs[0].weight.requires_grad


def test_reset_weighs_every_map_of_a_group_equally():
    """Uniform initialisation (pretrained=False): each head weight is 1 / (maps x C_m), so maps of
    ones give every group distance exactly 1; lambda is uniform."""
    channels = group_channels('alex', GROUPS)
    heads = QualityHeads(channels)
    for group, head in heads.heads.items():
        for conv in head.convs:
            assert torch.allclose(conv.weight, torch.full_like(conv.weight, 1 / (len(head.convs) * conv.in_channels)))
    ones = {g: [torch.ones(1, c, 3, 3) for c in cs] for g, cs in channels.items()}
    score, distances, _ = heads(ones)
    for group in GROUPS:
        assert distances[group].item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(heads.fusion.weights, torch.full((3,), 1 / 3))
    assert score.item() == pytest.approx(1.0, abs=1e-6)
