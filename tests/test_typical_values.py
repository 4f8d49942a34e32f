"""The typical-values table: per metric and distortion, the median over the photographs."""

import statistics

import pyiqa
import torch

from spips_pyiqa.benchmark import typical_values as tv
from spips_pyiqa.data.distortions import distort, photo


def test_each_cell_is_the_median_score_over_the_photographs(monkeypatch):
    photos = ('astronaut', 'coffee', 'chelsea')
    monkeypatch.setattr(tv, 'PHOTOS', photos)
    monkeypatch.setattr(tv, 'SIZE', 64)
    metrics = {'psnr': pyiqa.create_metric('psnr', device='cpu'), 'lpips': pyiqa.create_metric('lpips', device='cpu')}
    table = tv.typical_values_table(metrics)
    assert [row['metric'] for row in table.rows] == ['psnr', 'lpips']
    assert [row['lower better'] for row in table.rows] == ['no', 'yes']
    assert len(table.columns) == 2 + len(tv.SETTINGS)
    for row, (name, metric) in zip(table.rows, metrics.items()):
        for column, (kind, severity) in zip(table.columns[2:], tv.SETTINGS):
            with torch.no_grad():
                values = [metric(distort(photo(p, 64), kind, severity), photo(p, 64)).item() for p in photos]
            assert abs(row[column] - statistics.median(values)) < 1e-6, (name, column)
    assert table.rows[0]['jpeg q=30'] > table.rows[0]['jpeg q=10']  # PSNR falls as JPEG gets worse
