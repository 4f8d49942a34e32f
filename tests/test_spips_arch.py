"""Properties of the SPIPS architecture, on real photographs (scikit-image) with made distortions."""

import pytest
import torch
from pyiqa.archs.lpips_arch import LPIPS
from pyiqa.archs.ssim_arch import ssim
from pyiqa.utils.color_util import to_y_channel

from spips_pyiqa import SPIPS
from spips_pyiqa.recipes.label_free_heads import build_default_heads, fusion_weights, lpips_linear_weights
from spips_pyiqa.data.distortions import DISTORTIONS, PHOTOS, distort, photo
from spips_pyiqa.archs.groups import GROUPS
from spips_pyiqa.archs.traditional_maps import gaussian_kernel_1d, psnr_distance_map, ssim_distance_maps

VARIANTS = {
    'spips': GROUPS,
    'no-semantic': ('traditional', 'perceptual'),
    'no-traditional': ('perceptual', 'semantic'),
}


@pytest.fixture(scope='module', params=list(VARIANTS))
def model(request):
    return SPIPS(net='alex', groups=VARIANTS[request.param])


@pytest.fixture(scope='module')
def spips():
    return SPIPS(net='alex', heads_version='0.1')


@pytest.mark.parametrize('name', PHOTOS[:3])
def test_identical_images_score_zero(model, name):
    x = photo(name, 128)
    score = model(x, x)
    assert score.shape == (1, 1)
    assert abs(score.item()) <= 1e-6


@pytest.mark.parametrize('kind', list(DISTORTIONS))
def test_score_grows_with_severity(model, kind):
    for name in PHOTOS[:2]:
        ref = photo(name, 192)
        scores = [model(distort(ref, kind, s), ref).item() for s in range(4)]
        assert all(s > 0 for s in scores), scores
        assert scores == sorted(scores) and len(set(scores)) == 4, (name, kind, scores)


def test_batch_equals_per_image_and_is_deterministic(spips):
    refs = torch.cat([photo(n, 96) for n in PHOTOS[:4]])
    targets = torch.cat([distort(refs[i : i + 1], k, 1) for i, k in enumerate(['noise', 'blur', 'jpeg', 'noise'])])
    batched = spips(targets, refs)
    single = torch.cat([spips(targets[i : i + 1], refs[i : i + 1]) for i in range(4)])
    assert batched.shape == (4, 1)
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    assert torch.equal(spips(targets, refs), batched)
    permuted = spips(targets.flip(0), refs.flip(0)).flip(0)
    torch.testing.assert_close(permuted, batched, atol=1e-6, rtol=0)


@pytest.mark.parametrize('size', [64, 67, 100])
def test_small_and_odd_sizes(spips, size):
    ref = photo('coffee', size)
    target = distort(ref, 'blur', 2)
    score, quality_map = spips(target, ref, return_map=True)
    assert torch.isfinite(score).all() and score.item() > 0
    assert quality_map.shape == (1, 1, size, size)
    assert (quality_map >= 0).all()


@pytest.mark.slow
def test_large_image_2048(spips):
    ref = torch.nn.functional.interpolate(photo('retina'), size=(2048, 2048), mode='bilinear')
    score = spips(distort(ref, 'noise', 1), ref)
    assert torch.isfinite(score).all() and score.item() > 0


@pytest.mark.parametrize('case', ['identical', 'distorted', 'saturated'])
def test_finite_gradients_wrt_target(spips, case):
    ref = photo('astronaut', 64)
    target = {
        'identical': ref.clone(),
        'distorted': distort(ref, 'noise', 2),
        'saturated': (ref > 0.5).float(),
    }[case].requires_grad_(True)
    score = spips(target, ref)
    score.sum().backward()
    assert torch.isfinite(score).all()
    assert torch.isfinite(target.grad).all()
    if case == 'distorted':
        assert target.grad.abs().sum() > 0


def test_quality_maps_per_group(spips):
    ref = photo('chelsea', 128)
    maps = spips.quality_maps(distort(ref, 'jpeg', 2), ref)
    assert set(maps) == {*GROUPS, 'spips'}
    for m in maps.values():
        assert m.shape == (1, 1, 128, 128) and (m >= 0).all()
    same = spips.quality_maps(ref, ref)
    assert all(m.abs().max() <= 1e-6 for m in same.values())


def test_fusion_weights_on_simplex(model):
    weights = model.quality.fusion.weights
    assert weights.shape == (len(model.groups),)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))


def test_deep_groups_reproduce_lpips():
    """With LPIPS's heads and lambda = (1/2, 1/2), the deep groups are LPIPS / 2 (eqs. 4-10)."""
    model = SPIPS(net='alex', groups=('perceptual', 'semantic'), pretrained=False)
    with torch.no_grad():
        convs = [c for g in ('perceptual', 'semantic') for c in model.quality.heads[g].convs]
        for conv, weight in zip(convs, lpips_linear_weights('alex')):
            conv.weight.copy_(weight)
    lpips = LPIPS(net='alex', pretrained_model_path=None).eval()
    with torch.no_grad():
        for lin, weight in zip(lpips.lins, lpips_linear_weights('alex')):
            lin.model[-1].weight.copy_(weight)
    ref = photo('rocket', 128)
    target = distort(ref, 'blur', 1)
    torch.testing.assert_close(2 * model(target, ref), lpips(target, ref), atol=1e-5, rtol=1e-5)


def test_ssim_map_matches_pyiqa_in_valid_region():
    ref = photo('astronaut', 128)
    target = distort(ref, 'noise', 2)
    luma_target, luma_ref = to_y_channel(target, 1.0, 'ycbcr'), to_y_channel(ref, 1.0, 'ycbcr')
    ours = 1 - ssim_distance_maps(luma_target, luma_ref, gaussian_kernel_1d())[:, :1, 5:-5, 5:-5]
    theirs = ssim(luma_target.double(), luma_ref.double(), get_ssim_map=True, data_range=1.0)
    torch.testing.assert_close(ours.double(), theirs, atol=1e-3, rtol=0)


def test_psnr_map_of_uniform_error():
    ref = photo('coffee', 64)
    target = ref + 0.01  # MSE 1e-4 everywhere: PSNR 40 dB -> distance 1 - 40/50
    distance = psnr_distance_map(target, ref, gaussian_kernel_1d())
    torch.testing.assert_close(distance, torch.full_like(distance, 0.2), atol=1e-4, rtol=0)


@pytest.mark.slow
def test_default_heads_file_matches_its_recipe(spips):
    """The shipped heads are exactly what default_heads.py builds (provenance is reproducible)."""
    rule = spips.meta['fusion_rule']
    rebuilt = build_default_heads('alex', GROUPS, fusion_weights('alex', rule)).state_dict()
    for key, value in spips.quality.state_dict().items():
        torch.testing.assert_close(value, rebuilt[key], atol=1e-6, rtol=0)
    assert 'not BAPPS-trained' in spips.meta['provenance'] and rule == 'inverse-mean'


@pytest.mark.parametrize('size', [(64, 64), (97, 97), (131, 257), (70, 93)])
def test_identical_images_score_exactly_zero_at_every_size(size):
    """At odd sizes the coarsest MS-SSIM scale is a few pixels wide; float32 cancellation there
    once gave identical images 1e-6..1e-5 (SSIM terms are now 1 minus a distance)."""
    ref = photo('chelsea', max(size))[..., : size[0], : size[1]]
    for net in (SPIPS('alex', heads_version='0.1').eval(), SPIPS('alex').eval()):
        with torch.no_grad():
            assert net(ref, ref).item() == 0.0
            assert all(v.item() == 0.0 for v in net.group_distances(ref, ref).values())
