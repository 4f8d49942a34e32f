"""``benchmark --pyiqa-datasets``: leaderboard rows in pyiqa's FR_benchmark_results.csv format."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import stats

from spips_pyiqa.benchmark import run as benchmark
from spips_pyiqa.benchmark.leaderboard import leaderboard_cell
from fixtures.mos_fixture import make_fr_fixture
from spips_pyiqa.metrics.correlation import Correlations

#: Where the fixtures' meta-info and images lie under the data root, and whether labels are DMOS.
LAYOUT = {
    'live': ('meta_info/meta_info_LIVEIQADataset.csv', 'LIVEIQA_release2', 'LIVEIQA_release2', True),
    'kadid10k': ('meta_info/meta_info_KADID10kDataset.csv', 'kadid10k/images', 'kadid10k/images', False),
}


def _read_csv(path):
    with path.open(newline='') as handle:
        return list(csv.reader(handle))


def _independent_cell(root, dataset, metric_name):
    """PLCC/SRCC/KRCC cell computed without the code under test: csv + PIL + pyiqa + scipy."""
    import pyiqa

    meta, ref_dir, dist_dir, dmos = LAYOUT[dataset]
    metric = pyiqa.create_metric(metric_name, device='cpu')
    scores, labels = [], []
    for ref, dist, label, *_ in _read_csv(root / meta)[1:]:
        pair = [torch.from_numpy(np.array(Image.open(root / folder / name).convert('RGB')))
                .permute(2, 0, 1)[None].float() / 255 for folder, name in ((dist_dir, dist), (ref_dir, ref))]
        with torch.no_grad():
            scores.append(float(metric(*pair)))
        labels.append(float(label))
    distance = np.array(scores) * (1 if metric.lower_better else -1)
    badness = np.array(labels) * (1 if dmos else -1)
    values = (stats.pearsonr(distance, badness)[0], stats.spearmanr(distance, badness)[0],
              stats.kendalltau(distance, badness)[0])
    return '/'.join(str(round(float(v), 4)) for v in values)


def test_leaderboard_rows_equal_an_independent_computation(tmp_path, capsys, monkeypatch):
    root = tmp_path / 'datasets'
    make_fr_fixture(root, 'live', seed=1)
    make_fr_fixture(root, 'kadid10k', seed=2)
    make_fr_fixture(root, 'pipal', size=32)  # below SPIPS' minimum size: psnr scores, spips fails
    make_fr_fixture(root, 'csiq', size=16)
    (root / 'CSIQ' / 'dst_imgs' / 'coffee.BLUR.2.png').unlink()  # one listed image gone
    out = tmp_path / 'out'
    args = ['--pyiqa-datasets', 'live', 'kadid10k', 'tid2013', 'csiq', 'pipal', '--data-root', str(root),
            '--metrics', 'psnr,spips', '--out', str(out)]
    assert benchmark.cli(args) == 0
    err = capsys.readouterr().err
    assert 'leaderboard: tid2013: not found under' in err and 'tid2013/distorted_images' in err
    assert 'leaderboard: csiq: 1 of 39 images listed in' in err and 'missing' in err
    rows = _read_csv(out / 'leaderboard_pyiqa_fr.csv')
    assert rows[0] == ['Metric name', 'live(PLCC/SRCC/KRCC)', 'kadid10k(PLCC/SRCC/KRCC)', 'pipal(PLCC/SRCC/KRCC)']
    assert [row[0] for row in rows[1:]] == ['psnr', 'spips']
    assert rows[1][3].count('/') == 2 and rows[2][3] == 'n/a'
    assert 'leaderboard: spips fails on pipal (target is 32x32; SPIPS needs at least 64x64' in err
    for row in rows[1:]:
        for dataset, cell in zip(LAYOUT, row[1:3]):
            assert cell == _independent_cell(root, dataset, row[0]), (row[0], dataset)
            assert all(float(v) > 0.5 for v in cell.split('/'))  # agreement is positive, MOS or DMOS
    md = (out / 'leaderboard_pyiqa_fr.md').read_text()
    assert f'| psnr | {rows[1][1]} | {rows[1][2]} |' in md and 'n=36' in md and 'human-trained on live_dev' in md
    assert '### Leaderboard rows: pyiqa full-reference' in (out / 'RESULTS.md').read_text()

    def must_not_score(self, target, ref):
        raise AssertionError(f'{self.name} recomputed despite the cache')

    monkeypatch.setattr(benchmark.BenchMetric, 'score', must_not_score)
    assert benchmark.cli(args[:3] + args[6:]) == 0  # live and kadid10k again, from the cache
    assert _read_csv(out / 'leaderboard_pyiqa_fr.csv') == [row[:3] for row in rows]


def test_leaderboard_refuses_unknown_sets_and_reports_nothing_found(tmp_path, capsys):
    out = tmp_path / 'out'
    assert benchmark.cli(['--pyiqa-datasets', 'koniq10k', '--metrics', 'psnr', '--out', str(out)]) == 2
    assert 'not a pyiqa full-reference data set: koniq10k' in capsys.readouterr().err
    assert benchmark.cli(['--pyiqa-datasets', 'pipal', '--data-root', str(tmp_path / 'none'),
                          '--metrics', 'psnr', '--out', str(out)]) == 0
    err = capsys.readouterr().err
    assert 'pipal: not found under' in err and 'no data set found' in err
    assert not (out / 'leaderboard_pyiqa_fr.csv').exists()


def test_cells_are_written_as_pyiqa_writes_them():
    assert leaderboard_cell(Correlations(9, 0.48999999, 0.5, -0.123449, False)) == '0.49/0.5/-0.1234'
    assert leaderboard_cell(Correlations(2, float('nan'), float('nan'), float('nan'), False)) == 'nan/nan/nan'
