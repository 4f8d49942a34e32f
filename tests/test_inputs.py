"""Bad and unusual tensor inputs through the SPIPS module and ``pyiqa.create_metric('spips')``:
one clear error (or a documented conversion) each, never a silently wrong score; determinism and
numerical stability on real photographs."""

import json
import os
import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyiqa
import pytest
import torch

from spips_pyiqa import SPIPS
from spips_pyiqa.data.distortions import PHOTOS, distort, photo
from spips_pyiqa.archs.input_checks import MIN_SIZE, InputRangeWarning, check_image_pair

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def metric():
    return pyiqa.create_metric('spips', device='cpu')


@contextmanager
def range_check_off(metric):
    """pyiqa's ``check_input_range=False`` (what ``as_loss=True`` does) on an existing metric."""
    metric.check_input_range = False
    try:
        yield metric
    finally:
        metric.check_input_range = True


@pytest.fixture(scope='module')
def spips(metric) -> SPIPS:
    assert isinstance(metric.net, SPIPS)
    return metric.net


@pytest.fixture(scope='module')
def pair():
    ref = photo('astronaut', 64)
    return distort(ref, 'noise', 1), ref


def _with(image, value):
    out = image.clone()
    out[0, 1, 5, 7] = value
    return out


# Each case: (target, ref) from the pair, the module's error, what create_metric raises (None: the
# module's error passes through pyiqa's checks).
CASES = {
    'size mismatch': (lambda t, r: (t, photo('astronaut', 96)),
                      (ValueError, r'target is 64x64 but ref is 96x96 .*resize or crop'), None),
    'target too small': (lambda t, r: (t[..., :63, :], r[..., :63, :]),
                         (ValueError, rf'target is 63x64; SPIPS needs at least {MIN_SIZE}x{MIN_SIZE}'), None),
    'ref too small': (lambda t, r: (t, r[..., :63]),
                      (ValueError, r'ref is 64x63; SPIPS needs at least 64x64 pixels'), None),
    'batch mismatch': (lambda t, r: (torch.cat([t, t]), r),
                       (ValueError, r'target has batch size 2 but ref has 1: .*ref\.expand\(2, -1, -1, -1\)'), None),
    'NaN target': (lambda t, r: (_with(t, float('nan')), r),
                   (ValueError, 'target contains NaN or Inf'), (AssertionError, r'\[0, 1\].*nan')),
    'Inf ref': (lambda t, r: (t, _with(r, float('inf'))),
                (ValueError, 'ref contains NaN or Inf'), (AssertionError, r'\[0, 1\].*inf')),
    'uint8': (lambda t, r: ((t * 255).round().byte(), (r * 255).round().byte()),
              (TypeError, r'target has dtype torch\.uint8.*target\.float\(\) / 255'), (AssertionError, r'\[0, 1\]')),
    'binary uint8 mask': (lambda t, r: ((t > 0.5).byte(), (r > 0.5).byte()),
                          (TypeError, r'target has dtype torch\.uint8'), None),
    'bool ref': (lambda t, r: (t, r > 0.5), (TypeError, r'ref has dtype torch\.bool.*ref\.float\(\)'), None),
    'RGBA': (lambda t, r: (torch.cat([t, torch.ones_like(t[:, :1])], 1), r),
             (ValueError, r'target must have 1 or 3 channels, got 4 \(RGBA\? use target\[:, :3\]'),
             (AssertionError, 'RGB or gray')),
    '3-D': (lambda t, r: (t[0], r[0]),
            (ValueError, r'target must be 4-D .* got shape \(3, 64, 64\).*target\.unsqueeze\(0\)'),
            (AssertionError, '4D')),
    'numpy': (lambda t, r: (t, r.numpy()),
              (TypeError, r'ref must be a torch\.Tensor .* got ndarray'), (Exception, 'Unsupported source type')),
}


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_module(spips, pair, case):
    make, (error, message), _ = CASES[case]
    with pytest.raises(error, match=message):
        spips(*make(*pair))


@pytest.mark.parametrize('case', list(CASES))
def test_bad_input_create_metric(metric, pair, case):
    """pyiqa's own AssertionErrors come first; with its range check off, SPIPS's errors remain."""
    make, module_error, pyiqa_error = CASES[case]
    error, message = pyiqa_error or module_error
    with pytest.raises(error, match=message):
        metric(*make(*pair))
    if case not in ('RGBA', '3-D', 'numpy'):  # pyiqa asserts those whatever the range option
        with range_check_off(metric), pytest.raises(module_error[0], match=module_error[1]):
            metric(*make(*pair))


def test_path_string_to_module_points_to_load_image(spips, pair):
    with pytest.raises(TypeError, match=r'load_image\(ref\)'):
        spips(pair[0], 'ref.png')


def test_out_of_range_values(spips, metric, pair):
    """Module: computed with an InputRangeWarning; create_metric: pyiqa's AssertionError."""
    target, ref = pair
    for bad in (target * 255, target * 2 - 1):
        with pytest.warns(InputRangeWarning, match=r'target has values outside \[0, 1\].*divide by 255'):
            score = spips(bad, ref)
        assert torch.isfinite(score).all()
        with pytest.raises(AssertionError, match=r'Input must be normalized to \[0, 1\]'):
            metric(bad, ref)
    edge = target.clone()
    edge[0, 0, 0, :2] = torch.tensor([-5e-7, 1 + 5e-7])  # rounding slack, as pyiqa allows
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        spips(edge, ref)


def test_grey_is_repeated_to_rgb(spips, pair):
    target, ref = pair
    grey = target.mean(dim=1, keepdim=True)
    torch.testing.assert_close(spips(grey, ref), spips(grey.repeat(1, 3, 1, 1), ref), atol=1e-6, rtol=0)
    torch.testing.assert_close(spips(grey, grey), torch.zeros(1, 1), atol=1e-6, rtol=0)


def test_memory_layouts_give_the_same_score(spips):
    refs = torch.cat([photo(name, 64) for name in PHOTOS[:2]])
    targets = torch.cat([distort(refs[:1], 'blur', 1), distort(refs[1:], 'jpeg', 1)])
    expected = spips(targets, refs)
    wide_t, wide_r = torch.cat([targets, refs], dim=3), torch.cat([refs, targets], dim=3)
    layouts = {
        'channels-last': (targets.contiguous(memory_format=torch.channels_last),
                          refs.contiguous(memory_format=torch.channels_last)),
        'slices of wider images': (wide_t[..., :64], wide_r[..., :64]),
        'transposed storage': (targets.transpose(2, 3).contiguous().transpose(2, 3), refs),
        'step-2 batch slice': (torch.stack([targets[0], refs[0], targets[1]])[::2],
                               torch.stack([refs[0], targets[0], refs[1]])[::2]),
    }
    for name, (target, ref) in layouts.items():
        assert not (target.is_contiguous() and ref.is_contiguous()), name
        torch.testing.assert_close(spips(target, ref), expected, atol=1e-6, rtol=0, msg=name)


def test_one_reference_expanded_over_a_batch(spips):
    ref = photo('chelsea', 64)
    targets = torch.cat([distort(ref, kind, 2) for kind in ('noise', 'blur', 'jpeg')])
    expanded = spips(targets, ref.expand(3, -1, -1, -1))
    single = torch.cat([spips(t[None], ref) for t in targets])
    torch.testing.assert_close(expanded, single, atol=1e-6, rtol=0)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16, torch.float64])
def test_other_float_dtypes_are_computed_in_float32(spips, pair, dtype):
    target, ref = (x.to(dtype) for x in pair)
    score = spips(target, ref)
    assert score.dtype == torch.float32
    torch.testing.assert_close(score, spips(target.float(), ref.float()), atol=1e-6, rtol=0)
    if dtype != torch.float64:  # half-precision inputs keep their gradient path
        target.requires_grad_(True)
        spips(target, ref).sum().backward()
        assert target.grad.dtype == dtype and torch.isfinite(target.grad.float()).all()


def test_device_mismatch_is_named_and_meta_tensors_need_no_data():
    on_meta = torch.empty(1, 3, 64, 64, device='meta')
    with pytest.raises(ValueError, match=r'target is on meta but ref is on cpu: move both to one device'):
        check_image_pair(on_meta, torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r'target is on cpu but ref is on meta'):
        check_image_pair(torch.rand(1, 3, 64, 64), on_meta)
    out = check_image_pair(on_meta, on_meta[:, :1])  # structure checks only, no data on meta
    assert [tuple(x.shape) for x in out] == [(1, 3, 64, 64)] * 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cpu_cuda_mismatch(metric, pair):
    target, ref = pair
    with pytest.raises(ValueError, match=r'target is on cuda:0 but ref is on cpu'):
        SPIPS().cuda()(target.cuda(), ref)
    cuda_metric = pyiqa.create_metric('spips', device='cuda')  # moves both inputs to its device
    assert cuda_metric(target, ref.cuda()).item() == pytest.approx(metric(target, ref).item(), abs=1e-4)


def test_empty_batch_gives_empty_scores(spips, pair):
    target, ref = pair
    assert spips(target[:0], ref[:0]).shape == (0, 1)
    empty = target[:0].clone().requires_grad_(True)  # as a loss: the space-to-depth convolution's path
    spips(empty, ref[:0]).sum().backward()
    assert empty.grad.shape == empty.shape


# --- determinism and numerical stability --------------------------------------------------------


def test_same_score_across_batch_compositions_and_calls(metric):
    refs = torch.cat([photo(name, 64) for name in PHOTOS])
    targets = torch.cat([distort(refs[i : i + 1], ('noise', 'blur', 'jpeg')[i % 3], i % 4) for i in range(len(PHOTOS))])
    with torch.no_grad():
        alone = torch.cat([metric(targets[i : i + 1], refs[i : i + 1]) for i in range(len(PHOTOS))])
        for order in ([0, 1], [4, 2, 0], [3, 3, 1, 0, 2], list(range(5))):
            batch = metric(targets[order], refs[order])
            torch.testing.assert_close(batch, alone[order], atol=1e-6, rtol=0, msg=str(order))
        assert torch.equal(metric(targets, refs), metric(targets, refs))


@pytest.mark.parametrize('name', PHOTOS[:3])
def test_scores_are_stable_under_tiny_noise(metric, name):
    """|SPIPS(x + d) - SPIPS(x)| <= 2e-4 for a *random* d with |d| <= 1e-4 (measured at most 8e-5 at
    96-512 px by ``python -m spips_pyiqa.benchmark.numerics``; the worst-case d moves it up to 2.5e-3)."""
    ref = photo(name, 96)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind in ('noise', 'blur', 'jpeg'):
            target = distort(ref, kind, 1)
            delta = (torch.rand(target.shape, generator=generator) * 2 - 1) * 1e-4
            shift = metric((target + delta).clamp(0, 1), ref) - metric(target, ref)
            assert abs(shift.item()) <= 2e-4, (kind, shift.item())
        near = (ref + delta.abs() * torch.where(ref < 0.5, 1, -1)).clamp(0, 1)
        assert 0 <= metric(near, ref).item() <= 1e-5


LARGE_IMAGE = """
import json, resource, sys, torch, torch.nn.functional as F
import pyiqa, spips_pyiqa
from spips_pyiqa.data.distortions import distort, photo
metric = pyiqa.create_metric('spips', device='cpu')
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ref = F.interpolate(photo('astronaut'), size=(2048, 2048), mode='bilinear', align_corners=False).clamp(0, 1)
with torch.no_grad():
    score, quality_map = metric(distort(ref, 'noise', 1), ref, return_map=True)
print(json.dumps({'score': score.item(), 'map_finite': bool(torch.isfinite(quality_map).all()),
                  'map_min': quality_map.min().item(), 'map_shape': list(quality_map.shape),
                  'before_kb': before, 'peak_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_2048_px_float32_has_no_overflow_and_bounded_memory():
    """One 2048x2048 pair (score + map) in a fresh process: finite, in range, peak RSS measured.

    Memory measured by ``python -m spips_pyiqa.benchmark.numerics`` (benchmark_results/numerics.md).
    """
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    result = subprocess.run([sys.executable, '-c', LARGE_IMAGE], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert np.isfinite(out['score']) and 0 < out['score'] < 1, out
    assert out['map_finite'] and out['map_min'] >= 0 and out['map_shape'] == [1, 1, 2048, 2048], out
    assert out['peak_kb'] - out['before_kb'] < 3 * 2**20, out  # under 3 GiB for the computation
