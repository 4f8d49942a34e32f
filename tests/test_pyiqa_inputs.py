"""Files handed to ``pyiqa.create_metric('spips')`` are read with ``load_image``, not pyiqa's 8-bit reader."""

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import pyiqa
from spips_pyiqa import load_image
from spips_pyiqa.data.distortions import photo
from spips_pyiqa.data.image_io import ImageReadError


@pytest.fixture(scope='module')
def metric():
    return pyiqa.create_metric('spips', device='cpu')


@pytest.fixture
def grey_pair(tmp_path) -> tuple[Path, Path]:
    """A 16-bit grey PNG and its 8-bit copy (the issue's case: pyiqa scored them 1.45 apart)."""
    grey16 = (photo('coffee', 96)[0].mean(0).numpy() * 65535).round().astype(np.uint16)
    path16, path8 = tmp_path / 'grey16.png', tmp_path / 'grey8.png'
    assert cv2.imwrite(str(path16), grey16)
    Image.fromarray((grey16 >> 8).astype(np.uint8), mode='L').save(path8)
    return path16, path8


def test_16_bit_grey_file_scores_as_load_image_reads_it(metric, grey_pair):
    path16, path8 = grey_pair
    expected = metric(load_image(path16), load_image(path8)).item()
    assert expected < 0.01  # the same picture, 16 vs 8 bits
    assert metric(str(path16), str(path8)).item() == pytest.approx(expected, abs=1e-6)
    assert metric(path16, ref=path8).item() == pytest.approx(expected, abs=1e-6)  # Path, keyword


def test_transparent_file_is_refused_naming_it(metric, tmp_path, grey_pair):
    rgba = (photo('astronaut', 96)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    rgba = np.concatenate([rgba, np.full(rgba.shape[:2] + (1,), 255, np.uint8)], axis=2)
    rgba[:8, :8, 3] = 0
    path = tmp_path / 'cutout.png'
    Image.fromarray(rgba, mode='RGBA').save(path)
    ref = tmp_path / 'ref.png'
    Image.fromarray(rgba[..., :3]).save(ref)
    with pytest.raises(ImageReadError, match='cutout.png has transparent pixels'):
        metric(str(path), str(ref))
    with pytest.raises(ImageReadError, match='pixel mode .RGBA.*load_image'):
        metric(Image.open(path), str(ref))
    with pytest.raises(ImageReadError, match='image bytes.*load_image'):
        metric(path.read_bytes(), str(ref))


def test_plain_8_bit_images_and_tensors_score_as_before(metric, tmp_path):
    target = (photo('astronaut', 96)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    ref = (photo('chelsea', 96)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    expected = metric(torch.from_numpy(target).permute(2, 0, 1)[None] / 255.0,
                      torch.from_numpy(ref).permute(2, 0, 1)[None] / 255.0).item()
    buffer = io.BytesIO()
    Image.fromarray(ref).save(buffer, format='PNG')
    assert metric(Image.fromarray(target), buffer.getvalue()).item() == pytest.approx(expected, abs=1e-6)


def test_other_metrics_keep_pyiqa_s_reader():
    lpips = pyiqa.create_metric('psnr', device='cpu')
    assert not lpips._forward_pre_hooks
    assert len(pyiqa.create_metric('spips-vgg', device='cpu')._forward_pre_hooks) == 1
