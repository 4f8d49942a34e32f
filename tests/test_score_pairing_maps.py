"""``score`` for restoration outputs: pairing by stem or after a target suffix, unmatched names
listed instead of fatal on request; maps on a fixed scale with a colour bar and as raw floats;
a progress bar only on a terminal, never sharing a line with a result; plain help."""

import io
import re
import sys

import numpy as np
import pyiqa
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from score_fixtures import reference, save_png
from spips_pyiqa.cli.score import _parser, cli
from spips_pyiqa.data.distortions import distort
from spips_pyiqa.data.image_io import heat_map_description, load_image


def _folder(root, names, distorted: bool):
    for i, name in enumerate(names):
        image = reference(i)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == '.jpg':
            Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path, quality=90)
        else:
            save_png(path, distort(image, 'noise', 1) if distorted else image)
    return root


def _names(out: str) -> list[str]:
    return [line.split('\t')[0] for line in out.strip().splitlines()]


def test_match_stem_pairs_other_suffixes(tmp_path, capsys):
    target = _folder(tmp_path / 't', ['img00.jpg', 'img01.jpg'], True)
    ref = _folder(tmp_path / 'r', ['img00.png', 'img01.png'], False)
    assert cli([str(target), str(ref), '--metric', 'psnr']) == 1
    assert 'only in' in capsys.readouterr().err
    assert cli([str(target), str(ref), '--metric', 'psnr', '--match', 'stem']) == 0
    assert _names(capsys.readouterr().out) == ['img00.jpg', 'img01.jpg', 'mean']
    _folder(tmp_path / 'r', ['img00.jpg'], False)  # now img00 is in the ref folder twice
    assert cli([str(target), str(ref), '--metric', 'psnr', '--match', 'stem']) == 1
    assert 'pair with the same name (img00.jpg and img00.png)' in capsys.readouterr().err


def test_target_suffix_pairs_super_resolution_names(tmp_path, capsys):
    target = _folder(tmp_path / 't', ['img00_x4_SR.png', 'img01_x4_SR.png'], True)
    ref = _folder(tmp_path / 'r', ['img00.png', 'img01.png'], False)
    assert cli([str(target), str(ref), '--metric', 'psnr', '--target-suffix', '_x4_SR']) == 0
    lines = dict(line.split('\t') for line in capsys.readouterr().out.strip().splitlines())
    metric = pyiqa.create_metric('psnr', device='cpu')
    for i in range(2):
        with torch.no_grad():
            expected = metric(load_image(target / f'img{i:02d}_x4_SR.png'), load_image(ref / f'img{i:02d}.png'))
        assert float(lines[f'img{i:02d}_x4_SR.png']) == pytest.approx(expected.item(), abs=1e-5)


def test_allow_unmatched_scores_what_pairs_and_lists_the_rest(tmp_path, capsys):
    target = _folder(tmp_path / 't', ['img00.png', 'img01.png', 'img02.png'], True)
    ref = _folder(tmp_path / 'r', ['img00.png', 'img01.png', 'img05.png'], False)
    assert cli([str(target), str(ref), '--metric', 'psnr']) == 1
    assert 'allow unmatched' in capsys.readouterr().err
    assert cli([str(target), str(ref), '--metric', 'psnr', '--allow-unmatched']) == 0
    captured = capsys.readouterr()
    assert _names(captured.out) == ['img00.png', 'img01.png', 'mean']
    assert f'not paired, not scored: only in {target}: img02.png; only in {ref}: img05.png' in captured.err


@pytest.fixture(scope='module')
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp('pair')
    image = reference(1)  # 80 x 64
    return save_png(root / 't.png', distort(image, 'jpeg', 2)), save_png(root / 'r.png', image)


def _colours(values) -> np.ndarray:
    return (colormaps['inferno'](values)[..., :3] * 255).round().astype(np.uint8)


@pytest.mark.parametrize('value_range', [None, (0.0, 0.05)])
def test_map_range_colour_bar_and_raw_map(pair, tmp_path, value_range):
    target, ref = pair
    extra = [] if value_range is None else ['--map-range', *map(str, value_range)]
    assert cli([str(target), str(ref), '--map', str(tmp_path / 'm.png'), '--map-raw', *extra]) == 0
    raw = np.load(tmp_path / 'm.npy')
    with torch.no_grad():
        _, expected = pyiqa.create_metric('spips', device='cpu')(load_image(target), load_image(ref), return_map=True)
    np.testing.assert_allclose(raw, expected.squeeze().numpy(), atol=1e-6)
    low, high = value_range or (0.0, float(raw.max()))
    drawn = np.asarray(Image.open(tmp_path / 'm.png').convert('RGB'))
    assert drawn.shape[0] == 80 and drawn.shape[1] > 64
    np.testing.assert_array_equal(drawn[:, :64], _colours(np.clip((raw.astype(np.float64) - low) / (high - low), 0, 1)))
    bar = drawn[:, 64:].reshape(-1, 3)
    for end in (0.0, 1.0):  # the colour bar spans the whole scale
        assert (np.abs(bar.astype(int) - _colours(np.array([end]))[0]).sum(axis=1) == 0).any()


def test_maps_are_redrawn_when_the_range_changes(pair, tmp_path):
    target, ref = pair
    path = tmp_path / 'm.png'
    assert cli([str(target), str(ref), '--map', str(path)]) == 0
    assert 'range=per-image' in heat_map_description(path)
    assert cli([str(target), str(ref), '--map', str(path), '--map-range', '0', '0.5']) == 0
    assert 'range=0,0.5' in heat_map_description(path)


def test_map_options_that_cannot_work_are_usage_errors(pair, capsys):
    target, ref = pair
    for extra, message in ((['--map-range', '0', '1'], '--map-range and --map-raw need --map'),
                           (['--map', 'm.png', '--map-range', '1', '0'], 'finite LOW < HIGH'),
                           (['--map', 'm.png', '--metric', 'psnr'], 'quality maps come from a SPIPS metric')):
        assert cli([str(target), str(ref), *extra]) == 2
        assert message in capsys.readouterr().err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal_and_cleared_before_each_line(tmp_path, monkeypatch, capsys):
    target = _folder(tmp_path / 't', [f'img{i:02d}.png' for i in range(4)], True)
    ref = _folder(tmp_path / 'r', [f'img{i:02d}.png' for i in range(4)], False)
    argv = [str(target), str(ref), '--metric', 'psnr', '--batch-size', '1', '--workers', '0']
    assert cli(argv) == 0
    assert capsys.readouterr().err == ''  # not a terminal: no bar
    screen = _Terminal()  # stdout and stderr on one terminal
    monkeypatch.setattr(sys, 'stdout', screen)
    monkeypatch.setattr(sys, 'stderr', screen)
    assert cli(argv) == 0
    text = screen.getvalue()
    assert re.search(r'\d+/4', text), text  # the bar was drawn
    shown = [line.rsplit('\r', 1)[-1] for line in text.split('\n')]  # what the terminal shows per line
    for i in range(4):
        assert any(re.fullmatch(rf'img{i:02d}\.png\t\d+\.\d+', line) for line in shown), shown
    assert not any('/4' in line for line in shown if line.strip())  # the bar is gone at the end


def test_help_is_plain_text_and_every_option_has_help(capsys):
    assert cli(['--help']) == 0
    text = capsys.readouterr().out
    assert '``' not in text and not re.search(r':(func|mod|class|meth):', text)
    assert all(action.help for action in _parser()._actions)
