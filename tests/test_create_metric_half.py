"""float16/bfloat16 images through ``pyiqa.create_metric('spips')``: what pyiqa 0.1.16 does.

pyiqa's ``InferenceModel.is_valid_input`` asserts ``x.max() < 1 + 1e-6`` in the *input's* dtype.
In float16 and bfloat16, ``1 + 1e-6`` rounds to exactly 1, so an image with any pixel equal to 1.0
fails pyiqa's range assertion before SPIPS sees it (every pyiqa metric behaves so). SPIPS computes
in float32 anyway, so ``x.float()`` loses nothing; ``check_input_range=False`` also works (SPIPS's
own check is done in float32). These tests pin that behaviour, so a pyiqa that changes it fails
here and the README's "Errors and limits" gets updated.
"""

import pyiqa
import pytest
import torch
import warnings

from spips_pyiqa.archs.input_checks import InputRangeWarning
from spips_pyiqa.data.distortions import distort, photo

HALF = [torch.float16, torch.bfloat16]


@pytest.fixture(scope='module')
def images():
    ref = photo('coffee', 64)
    assert ref.max() == 1.0, 'the test needs a pixel equal to 1.0'
    return distort(ref, 'blur', 1), ref


@pytest.fixture(scope='module')
def metric():
    return pyiqa.create_metric('spips', device='cpu')


@pytest.mark.parametrize('dtype', HALF)
def test_pyiqa_range_assertion_rounds_in_half_precision(dtype):
    """The cause: pyiqa's bound ``1 + 1e-6`` is 1 in these dtypes, so ``1.0 < bound`` is False."""
    one = torch.ones(1, dtype=dtype)
    assert not (one.max() < 1 + 1e-6)
    assert torch.ones(1).max() < 1 + 1e-6


@pytest.mark.parametrize('dtype', HALF)
def test_half_image_with_a_pixel_at_one_fails_pyiqa_check(metric, images, dtype):
    target, ref = images
    with pytest.raises(AssertionError, match=r'Input must be normalized to \[0, 1\], but got min=0.0000, max=1.0000'):
        metric(target.to(dtype), ref.to(dtype))


@pytest.mark.parametrize('dtype', HALF)
def test_documented_workarounds_give_the_float32_score(metric, images, dtype):
    """``.float()`` before create_metric, or ``check_input_range=False``: the score of the same values
    in float32 (SPIPS computes in float32), without a range warning."""
    target, ref = (image.to(dtype) for image in images)
    with torch.no_grad():
        expected = metric.net(target.float(), ref.float())
        unchecked = pyiqa.create_metric('spips', device='cpu', check_input_range=False)
        with warnings.catch_warnings():
            warnings.simplefilter('error', InputRangeWarning)
            torch.testing.assert_close(metric(target.float(), ref.float()), expected, atol=1e-6, rtol=0)
            torch.testing.assert_close(unchecked(target, ref), expected, atol=1e-6, rtol=0)
            torch.testing.assert_close(metric.net(target, ref), expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize('dtype', HALF)
def test_half_image_below_one_passes_pyiqa_check(metric, images, dtype):
    target, ref = (image.clamp(0, 0.99).to(dtype) for image in images)
    with torch.no_grad():
        score = metric(target, ref)
        torch.testing.assert_close(score, metric.net(target.float(), ref.float()), atol=1e-6, rtol=0)
    assert score.dtype == torch.float32
