"""The variants table (``spips_pyiqa/metric_configs.py``) is the one place a variant, its heads
version and the default are set: ``SPIPS(...)`` and ``pyiqa.create_metric(name)`` agree on it."""

import pyiqa
import pytest
import torch

from spips_pyiqa.archs.spips_arch import SPIPS, default_heads_path
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.metric_configs import (
    DEFAULT_VARIANT, LABEL_FREE, LABEL_FREE_SUFFIX, SPIPS_METRIC_CONFIGS, VARIANTS, default_heads_version,
)

OFFLINE = [n for n, v in VARIANTS.items() if v.net != 'squeeze']  # SqueezeNet has no offline backbone


@pytest.fixture(scope='module')
def pair():
    ref = photo('astronaut', 64)
    return distort(ref, 'jpeg', 2), ref


@pytest.mark.parametrize('name', OFFLINE)
def test_spips_with_a_variants_backbone_and_groups_is_its_registered_metric(name, pair):
    variant = VARIANTS[name]
    model = SPIPS(variant.net, variant.groups).eval()
    metric = pyiqa.create_metric(name, device='cpu')
    with torch.no_grad():
        assert torch.equal(model(*pair), metric(*pair))
    assert model.meta.get('version', LABEL_FREE) == variant.heads


def test_spips_without_arguments_is_the_default_metric(pair):
    with torch.no_grad():
        assert torch.equal(SPIPS().eval()(*pair), pyiqa.create_metric(DEFAULT_VARIANT, device='cpu')(*pair))


def test_every_registered_name_comes_from_the_table():
    expected = set(VARIANTS) | {n + LABEL_FREE_SUFFIX for n, v in VARIANTS.items() if v.human_trained}
    assert set(SPIPS_METRIC_CONFIGS) == expected
    for name, config in SPIPS_METRIC_CONFIGS.items():
        variant = VARIANTS[name.removesuffix(LABEL_FREE_SUFFIX)]
        options = config['metric_opts']
        heads = LABEL_FREE if name.endswith(LABEL_FREE_SUFFIX) else variant.heads
        assert (options['net'], tuple(options.get('groups', variant.groups)), options['heads_version']) == (
            variant.net, variant.groups, heads)
        assert default_heads_path(variant.net, variant.groups, heads).is_file()


def test_an_unregistered_combination_loads_label_free_heads():
    assert default_heads_version('vgg', ('traditional', 'perceptual')) == LABEL_FREE
    assert default_heads_version('alex', ('semantic', 'perceptual', 'traditional')) == VARIANTS['spips'].heads
