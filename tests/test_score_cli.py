"""Image files for SPIPS (``load_image``) and ``python -m spips_pyiqa score``: documented conversions
(EXIF orientation, grey, 16-bit at full precision, opaque alpha) and one clear error per bad file,
folder or option, never a wrong number."""

import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image, ImageFile

from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import ImageReadError, load_image
from spips_pyiqa.cli.score import cli
from spips_pyiqa.data.pairing import pair_images as image_pairs

REPO = Path(__file__).resolve().parents[1]
ORIENTATION = 0x0112


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> H x W x 3 uint8."""
    return (image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _save(path: Path, image: torch.Tensor, **options) -> Path:
    Image.fromarray(_uint8(image)).save(path, **options)
    return path


def _photo_16_bit(height: int = 64, width: int = 80) -> np.ndarray:
    """A photograph as H x W x 3 uint16 whose low bytes carry information (not 257 * 8-bit)."""
    image = photo('coffee', max(height, width))[..., :height, :width]
    fine = image[0].permute(1, 2, 0).numpy().astype(np.float64) * 65535
    noise = np.random.default_rng(0).integers(-200, 200, fine.shape)
    return np.clip(fine + noise, 0, 65535).astype(np.uint16)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return exif


def _png_with_exif(png: bytes, orientation: int) -> bytes:
    """Insert an eXIf chunk after IHDR (OpenCV writes 16-bit PNGs but no EXIF)."""
    body = _exif(orientation).tobytes().removeprefix(b'Exif\x00\x00')
    chunk = struct.pack('>I', len(body)) + b'eXIf' + body + struct.pack('>I', zlib.crc32(b'eXIf' + body))
    return png[:33] + chunk + png[33:]  # 8-byte signature + 25-byte IHDR chunk


def _reads_as(path: Path, expected: np.ndarray, atol: float) -> None:
    loaded = load_image(path)
    assert loaded.shape == (1, 3, *expected.shape[:2]) and loaded.dtype == torch.float32
    np.testing.assert_allclose(loaded[0].permute(1, 2, 0).numpy(), expected, atol=atol, rtol=0)


# --- conversions ---------------------------------------------------------------------------------


@pytest.mark.parametrize('suffix', ['.png', '.tif'])
def test_16_bit_rgb_keeps_full_precision(tmp_path, suffix):
    """Pillow reads 16-bit RGB as 8-bit RGB (high bytes only); load_image keeps all 16 bits."""
    array = _photo_16_bit()
    path = tmp_path / f'rgb16{suffix}'
    assert cv2.imwrite(str(path), array[..., ::-1])
    _reads_as(path, array / 65535.0, atol=1e-7)


def test_16_bit_grey_and_rgba(tmp_path):
    array = _photo_16_bit()
    grey = array[..., 1]
    assert cv2.imwrite(str(tmp_path / 'grey16.png'), grey)
    _reads_as(tmp_path / 'grey16.png', np.repeat(grey[..., None], 3, 2) / 65535.0, atol=1e-7)

    alpha = np.full(grey.shape, 65535, np.uint16)
    assert cv2.imwrite(str(tmp_path / 'opaque16.png'), np.dstack([array[..., ::-1], alpha]))
    _reads_as(tmp_path / 'opaque16.png', array / 65535.0, atol=1e-7)  # opaque alpha is dropped
    alpha[3, 4] = 65534
    assert cv2.imwrite(str(tmp_path / 'alpha16.png'), np.dstack([array[..., ::-1], alpha]))
    with pytest.raises(ImageReadError, match=r'alpha16.png has transparent pixels.*composite'):
        load_image(tmp_path / 'alpha16.png')


def test_grey_jpeg_becomes_rgb(tmp_path):
    grey = _uint8(photo('astronaut', 64))[..., 0]
    path = tmp_path / 'grey.jpg'
    Image.fromarray(grey).save(path, quality=95)
    decoded = np.asarray(Image.open(path), dtype=np.float32) / 255
    _reads_as(path, np.repeat(decoded[..., None], 3, 2), atol=0)


@pytest.mark.parametrize('orientation', range(2, 9))
def test_exif_orientation_is_applied(tmp_path, orientation):
    image = photo('chelsea', 96)[..., :64, :]  # 64 x 96: rotations change the shape
    plain = load_image(_save(tmp_path / 'plain.jpg', image, quality=95))
    rotated = load_image(_save(tmp_path / 'exif.jpg', image, quality=95, exif=_exif(orientation)))
    upright = {  # what each EXIF orientation asks a viewer to do to the stored pixels
        2: plain.flip(3),  # mirror left-right
        3: plain.flip(2, 3),  # rotate 180
        4: plain.flip(2),  # mirror top-bottom
        5: plain.transpose(2, 3),  # mirror about the main diagonal
        6: plain.rot90(-1, (2, 3)),  # rotate 90 clockwise
        7: plain.flip(2, 3).transpose(2, 3),  # mirror about the anti-diagonal
        8: plain.rot90(1, (2, 3)),  # rotate 90 counter-clockwise
    }
    torch.testing.assert_close(rotated, upright[orientation], atol=0, rtol=0)


@pytest.mark.parametrize('orientation', [3, 6, 7])
def test_exif_orientation_of_16_bit_png(tmp_path, orientation):
    """The OpenCV 16-bit path turns images exactly as the Pillow path does for 8-bit ones."""
    array = _photo_16_bit(64, 80)
    ok, png = cv2.imencode('.png', array[..., ::-1])
    assert ok
    (tmp_path / 'rot16.png').write_bytes(_png_with_exif(png.tobytes(), orientation))
    Image.fromarray((array >> 8).astype(np.uint8)).save(tmp_path / 'rot8.png', exif=_exif(orientation))
    sixteen, eight = load_image(tmp_path / 'rot16.png'), load_image(tmp_path / 'rot8.png')
    assert sixteen.shape == eight.shape == ((1, 3, 64, 80) if orientation == 3 else (1, 3, 80, 64))
    assert (sixteen - eight).abs().max() < 1 / 255


def test_alpha_and_palette_images(tmp_path):
    rgb = _uint8(photo('rocket', 64))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(tmp_path / 'opaque.png')
    _reads_as(tmp_path / 'opaque.png', rgb / 255.0, atol=1e-7)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[0, 0] = 0
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / 'hole.png')
    palette = Image.fromarray(rgb).quantize(16)
    palette.save(tmp_path / 'keyed.png', transparency=int(np.asarray(palette)[5, 5]))
    palette.save(tmp_path / 'palette.png')
    _reads_as(tmp_path / 'palette.png', np.asarray(palette.convert('RGB')) / 255.0, atol=1e-7)
    for name in ('hole.png', 'keyed.png'):
        with pytest.raises(ImageReadError, match=f'{name} has transparent pixels'):
            load_image(tmp_path / name)


# --- unreadable files ----------------------------------------------------------------------------


@pytest.mark.parametrize('suffix', ['.png', '.jpg'])
@pytest.mark.parametrize('global_flag', [False, True])
def test_truncated_files_are_refused(tmp_path, monkeypatch, suffix, global_flag):
    """Also where LOAD_TRUNCATED_IMAGES is set globally, as importing pyiqa.data does."""
    whole = _save(tmp_path / f'whole{suffix}', photo('astronaut', 128))
    data = whole.read_bytes()
    path = tmp_path / f'cut{suffix}'
    path.write_bytes(data[: len(data) * 2 // 3])
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', global_flag)
    with pytest.raises(ImageReadError, match=rf'cannot read image {re.escape(str(path))}: image file is truncated'):
        load_image(path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is global_flag  # restored
    load_image(whole)


def test_unreadable_files(tmp_path):
    (tmp_path / 'notes.png').write_text('not an image')
    cases = {
        tmp_path / 'notes.png': 'cannot identify image file',
        tmp_path / 'absent.png': 'image not found',
        tmp_path: 'cannot read image',
    }
    for path, message in cases.items():
        with pytest.raises(ImageReadError, match=message) as error:
            load_image(path)
        assert str(path) in str(error.value)
    frames = [Image.fromarray(_uint8(photo(name, 64))) for name in ('astronaut', 'coffee')]
    frames[0].save(tmp_path / 'anim.gif', save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match=r'anim.gif has 2 frames'):
        load_image(tmp_path / 'anim.gif')


# --- the command line ----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def metric():
    return pyiqa.create_metric('spips', device='cpu')


@pytest.fixture
def fast_cli(metric, monkeypatch):
    """``cli`` with the metric built once per module (the same thing create_metric builds)."""
    monkeypatch.setattr(pyiqa, 'create_metric', lambda name, device=None, **kw: metric)
    return cli


@pytest.fixture(scope='module')
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp('images')
    ref = photo('astronaut', 96)
    return {
        'ref': _save(root / 'ref.png', ref),
        'target': _save(root / 'target.png', distort(ref, 'blur', 2)),
        'big': _save(root / 'big.png', photo('astronaut', 128)),
        'small': _save(root / 'small.png', photo('astronaut', 96)[..., :63, :]),
    }


def _expected(metric, target_path, ref_path) -> float:
    with torch.no_grad():
        return metric(load_image(target_path), load_image(ref_path)).item()


def test_score_pair_and_map(fast_cli, metric, files, tmp_path, capsys):
    assert fast_cli([str(files['target']), str(files['ref']), '--map', str(tmp_path / 'map.png')]) == 0
    name, score = capsys.readouterr().out.strip().split('\t')
    assert name == 'target.png'
    assert float(score) == pytest.approx(_expected(metric, files['target'], files['ref']), abs=1e-6)
    width, height = Image.open(tmp_path / 'map.png').size
    assert height == 96 and width > 96  # the map at 1:1, then its colour bar
    (tmp_path / 'maps').mkdir()
    assert fast_cli([str(files['target']), str(files['ref']), '--map', str(tmp_path / 'maps')]) == 0
    assert (tmp_path / 'maps' / 'target.png').is_file()


def test_score_folders(fast_cli, metric, tmp_path, capsys):
    for folder, severity in (('dist', 2), ('ref', None)):
        (tmp_path / folder).mkdir()
        for name in ('astronaut', 'coffee'):
            image = photo(name, 64)
            _save(tmp_path / folder / f'{name}.png', image if severity is None else distort(image, 'noise', severity))
    assert fast_cli([str(tmp_path / 'dist'), str(tmp_path / 'ref'), '--map', str(tmp_path / 'maps')]) == 0
    lines = dict(line.split('\t') for line in capsys.readouterr().out.strip().splitlines())
    expected = {f'{n}.png': _expected(metric, tmp_path / 'dist' / f'{n}.png', tmp_path / 'ref' / f'{n}.png')
                for n in ('astronaut', 'coffee')}
    assert lines.keys() == {*expected, 'mean'}
    for name, value in expected.items():
        assert float(lines[name]) == pytest.approx(value, abs=1e-6)
    assert float(lines['mean']) == pytest.approx(sum(expected.values()) / 2, abs=1e-6)
    assert sorted(p.name for p in (tmp_path / 'maps').iterdir()) == ['astronaut.png', 'coffee.png']


def _folders(root: Path, target_names, ref_names):
    for folder, names in (('t', target_names), ('r', ref_names)):
        (root / folder).mkdir()
        for name in names:
            _save(root / folder / name, photo('coffee', 64))
    return root / 't', root / 'r'


def test_folder_errors(tmp_path):
    target, ref = _folders(tmp_path, ['a.png', 'b.png', 'c.png'], ['a.png', 'B.png', 'd.jpg'])
    with pytest.raises(ValueError) as error:
        image_pairs(target, ref)
    message = str(error.value)
    assert f'only in {target}: b.png, c.png' in message and f'only in {ref}: B.png, d.jpg' in message
    assert 'rename or remove' in message
    (tmp_path / 'x').mkdir()
    clash, clash_ref = _folders(tmp_path / 'x', ['a.png', 'a.jpg'], ['a.png', 'a.jpg'])
    with pytest.raises(ValueError, match=r'share a stem \(a\)'):
        image_pairs(clash, clash_ref)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no images'):
        image_pairs(empty, empty)
    with pytest.raises(ValueError, match='must both be files or both folders'):
        image_pairs(target, ref / 'a.png')


@pytest.mark.parametrize('case', ['size mismatch', 'too small', 'unreadable', 'unpaired', 'no cuda', 'bad device'])
def test_cli_errors_are_one_line(fast_cli, files, tmp_path, capsys, case):
    (tmp_path / 'broken.png').write_bytes(files['ref'].read_bytes()[:300])
    target, ref = _folders(tmp_path, ['a.png'], ['b.png'])
    argv, message = {
        'size mismatch': ([files['big'], files['ref']], r'big.png vs .*ref.png: target is 128x128 but ref is 96x96'),
        'too small': ([files['small'], files['small']], r'small.png vs .*small.png: spips: target is 63x96; SPIPS needs at least 64x64'),
        'unreadable': ([tmp_path / 'broken.png', files['ref']], r'cannot read image .*broken.png'),
        'unpaired': ([target, ref], r'only in .*t: a.png; only in .*r: b.png'),
        'no cuda': ([files['target'], files['ref'], '--device', 'cuda'], r'--device cuda: CUDA is not available'),
        'bad device': ([files['target'], files['ref'], '--device', 'gpu0'], r'--device gpu0: '),
    }[case]
    if case == 'no cuda' and torch.cuda.is_available():
        pytest.skip('CUDA is available here')
    assert fast_cli([str(a) for a in argv]) == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.count('\n') == 1 and captured.err.startswith('error: '), captured.err
    assert re.search(message, captured.err), captured.err


def test_command_line_entry_point_matches_in_process_score(metric, files):
    """A fresh interpreter (``python -m spips_pyiqa score``) gives the in-process score: same input,
    same number across runs; it does not import what only ``--methods`` needs (scipy.stats: 0.3-0.7 s
    of every start)."""
    env = {**os.environ, 'PYTHONPATH': str(REPO)}
    command = [sys.executable, '-X', 'importtime', '-m', 'spips_pyiqa', 'score', str(files['target']), str(files['ref'])]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    imported = {line.split('|')[-1].strip() for line in result.stderr.splitlines() if line.startswith('import time:')}
    assert 'spips_pyiqa.evaluation.folder_scoring' in imported and not {'scipy.stats', 'spips_pyiqa.evaluation.method_comparison'} & imported
    name, score = result.stdout.strip().split('\t')
    assert name == 'target.png'
    assert float(score) == pytest.approx(_expected(metric, files['target'], files['ref']), abs=1e-6)
