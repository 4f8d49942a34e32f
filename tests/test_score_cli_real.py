"""``python -m spips_pyiqa score`` with the real ``pyiqa.create_metric`` (no stand-in): ``--metric``
picks the variant and ``--map`` writes that variant's fused quality map."""

import numpy as np
import pytest
import torch
from PIL import Image

from spips_pyiqa.archs.spips_arch import SPIPS
from spips_pyiqa.cli.score import cli
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import load_image, save_heat_map
from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS


def _png(path, image: torch.Tensor):
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('pair')
    ref = photo('chelsea', 96)[..., :64, :80]
    return _png(folder / 'target.png', distort(ref, 'jpeg', 2)), _png(folder / 'ref.png', ref)


def _expected(variant, target_path, ref_path):
    options = {k: v for k, v in SPIPS_METRIC_CONFIGS[variant]['metric_opts'].items() if k != 'type'}
    with torch.no_grad():
        return SPIPS(**options)(load_image(target_path), load_image(ref_path), return_map=True)


@pytest.mark.parametrize('variant', ['spips', 'spips-no-semantic'])
def test_metric_and_map_options_for_real(files, tmp_path, capsys, variant):
    target_path, ref_path = files
    map_path = tmp_path / f'{variant}.png'
    assert cli([str(target_path), str(ref_path), '--metric', variant, '--map', str(map_path)]) == 0
    name, printed = capsys.readouterr().out.strip().split('\t')
    score, quality_map = _expected(variant, target_path, ref_path)
    assert name == 'target.png'
    assert float(printed) == pytest.approx(score.item(), abs=2e-6)
    written = np.asarray(Image.open(map_path))
    reference = np.asarray(Image.open(save_heat_map(quality_map, tmp_path / 'expected.png')))
    assert written.shape[:2] == (64, reference.shape[1]) and reference.shape[1] > 80  # map, then colour bar
    np.testing.assert_array_equal(written, reference)


def test_variants_give_different_scores(files):
    """Guards the test above: if --metric were ignored, the two variants could not both match."""
    scores = {v: _expected(v, *files)[0].item() for v in ('spips', 'spips-no-semantic')}
    assert abs(scores['spips'] - scores['spips-no-semantic']) > 1e-3, scores
