"""spips_pyiqa.evaluation.mos: scores of image files and sign-corrected agreement with MOS/DMOS,
checked against scipy on hand-made numbers and against pyiqa's psnr on a MOS fixture."""

from pathlib import Path

import numpy as np
import pyiqa
import pytest
from scipy import stats

from fixtures.mos_fixture import make_fr_fixture
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.data.mos_prepare import read_scores
from spips_pyiqa.evaluation.mos import agreement, evaluate_mos, pair_scores


def test_agreement_is_positive_when_the_metric_agrees_whatever_the_directions():
    badness = np.array([1.0, 2.0, 3.0, 5.0, 4.0, 6.0])
    groups = np.array(['b', 'a', 'b', 'a', 'b', 'a'])
    distance = badness ** 2  # a lower-better metric that orders like people
    for scores, lower_better in ((distance, True), (-distance, False)):
        for labels, labels_lower_better in ((badness, True), (-badness, False)):
            result = agreement(scores, lower_better, labels, labels_lower_better, groups, logistic=False)
            assert list(result) == ['all', 'a', 'b']
            assert result['all'].srcc == pytest.approx(1.0) and result['all'].n == 6
            assert result['all'].plcc == pytest.approx(stats.pearsonr(distance, badness).statistic)
            a = groups == 'a'
            assert result['a'].n == 3 and result['a'].krcc == pytest.approx(1.0)
            assert result['a'].plcc == pytest.approx(stats.pearsonr(distance[a], badness[a]).statistic)
    backwards = agreement(-distance, True, badness)['all']
    assert backwards.srcc == pytest.approx(-1.0)


def test_evaluate_mos_equals_pyiqa_scores_correlated_by_scipy(tmp_path):
    options = make_fr_fixture(tmp_path, 'kadid10k', n_scenes=2, size=64)
    root = Path(options['dataroot_target'])
    rows = read_scores(root, options['meta_info_file'], 1, 0, 2)
    metric = pyiqa.create_metric('psnr', device='cpu')  # higher-better; KADID labels are MOS
    pairs = [(root / row.dist, root / row.ref) for row in rows]
    expected = [float(metric(load_image(t), load_image(r))) for t, r in pairs]
    assert pair_scores(metric, pairs) == pytest.approx(expected, abs=1e-6)
    result = evaluate_mos(metric, rows, root, labels_lower_better=False, logistic=False)
    mos = np.array([row.mos for row in rows])
    assert result['all'].srcc == pytest.approx(stats.spearmanr(expected, mos).statistic)
    assert result['all'].plcc == pytest.approx(stats.pearsonr(expected, mos).statistic)
    assert result['all'].srcc > 0.5  # PSNR drops with severity: it agrees with the fixture's raters
