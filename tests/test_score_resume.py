"""Nothing lost, nothing silently wrong: ``score`` refuses outputs over its inputs and files at
``--out`` that are not its own, and resumes by content (changed inputs are rescored and counted;
``--overwrite`` starts fresh)."""

import os
import re

import pyiqa
import pytest
import torch

from score_fixtures import pair_folders, save_png
from spips_pyiqa.cli.score import cli
from spips_pyiqa.data.distortions import distort
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.evaluation.scores_file import file_stamp, read_scores
from test_score_metrics import Counting


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@pytest.mark.parametrize('case', ['map is target folder', 'map is ref folder', 'map inside target folder',
                                  'out inside ref folder', 'map is target file', 'map folder holds target file',
                                  'out is ref file'])
def test_outputs_over_inputs_are_refused_and_nothing_is_written(tmp_path, capsys, case):
    target, ref = pair_folders(tmp_path / 'data', 2)
    t, r = target / 'img00.png', ref / 'img00.png'
    argv, named = {
        'map is target folder': ([target, ref, '--map', target], target),
        'map is ref folder': ([target, ref, '--map', ref], ref),
        'map inside target folder': ([target, ref, '--map', target / 'maps'], target),
        'out inside ref folder': ([target, ref, '--out', ref / 's.csv'], ref),
        'map is target file': ([t, r, '--map', t], t),
        'map folder holds target file': ([t, r, '--map', target], t),  # the map would be target/img00.png
        'out is ref file': ([t, r, '--out', r], r),
    }[case]
    before = _snapshot(tmp_path)
    assert cli([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and 'nothing was written' in err, err
    assert str(argv[argv.index('--map') + 1 if '--map' in argv else argv.index('--out') + 1]) in err
    assert str(named) in err
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize('content', [b'\x89PNG\r\n\x1a\n' + bytes(range(256)), b'a,b\n1,2\n', b''])
@pytest.mark.parametrize('overwrite', [False, True])
def test_out_that_is_not_a_scores_file_is_left_untouched(tmp_path, capsys, content, overwrite):
    target, ref = pair_folders(tmp_path, 1)
    out = tmp_path / 'figure.png'
    out.write_bytes(content)
    assert cli([str(target), str(ref), '--metric', 'psnr', '--out', str(out)] + ['--overwrite'] * overwrite) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f'{out} is not a scores file of spips_pyiqa score' in err, err
    assert out.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ['figure.png', 'ref', 'target']


def _regenerate(path, severity):
    """Rewrite a target in place (new content, a later mtime), as a new training run does."""
    stamp = file_stamp(path)
    save_png(path, distort(load_image(path), 'blur', severity))
    os.utime(path, ns=(stamp[1] + 10**9, stamp[1] + 10**9))


def test_changed_inputs_are_rescored_and_counted(tmp_path, monkeypatch, capsys):
    target, ref = pair_folders(tmp_path, 4)
    out = tmp_path / 'scores.csv'
    argv = [str(target), str(ref), '--metric', 'psnr,ssim', '--out', str(out)]
    assert cli(argv) == 0
    capsys.readouterr()
    _regenerate(target / 'img01.png', 2)
    _regenerate(target / 'img03.png', 3)
    counting = Counting(monkeypatch)
    assert cli(argv) == 0
    err = capsys.readouterr().err
    assert 'resuming: 2 of 4 pairs already in' in err and '2 of 4 rescored: inputs changed' in err, err
    assert counting.pairs == {'psnr': 2, 'ssim': 2}
    metric = pyiqa.create_metric('psnr', device='cpu')
    for row in read_scores(out):
        with torch.no_grad():
            expected = metric(load_image(target / row.name), load_image(ref / row.name)).item()
        assert row.values['psnr'] == pytest.approx(expected, abs=1e-5)
        assert row.stamp == (*file_stamp(target / row.name), *file_stamp(ref / row.name))

    counting.pairs.clear()
    assert cli(argv + ['--overwrite']) == 0  # a fresh start: every pair again
    assert counting.pairs == {'psnr': 4, 'ssim': 4}
    assert 'resuming' not in capsys.readouterr().err


def test_changed_pair_drops_the_columns_not_asked_again(tmp_path, capsys):
    target, ref = pair_folders(tmp_path, 2)
    out = tmp_path / 'scores.csv'
    assert cli([str(target), str(ref), '--metric', 'psnr,ssim', '--out', str(out)]) == 0
    _regenerate(target / 'img00.png', 2)
    assert cli([str(target), str(ref), '--metric', 'psnr', '--out', str(out)]) == 0
    assert re.search(r'ssim: the old scores of 1 changed pairs are left empty', capsys.readouterr().err)
    rows = {row.name: row.values for row in read_scores(out)}
    assert set(rows['img00.png']) == {'psnr'} and set(rows['img01.png']) == {'psnr', 'ssim'}
