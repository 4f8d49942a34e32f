"""Correctness of the BAPPS scoring core (spips_pyiqa.metrics.bapps_scores).

The 2AFC proof reads the real BAPPS val judgments from ``../shared/data/bapps_val_judgments`` at run
time (never copied into the repository): an LPIPS model's distances, the human ``judge`` and the
per-triplet score that the LPIPS protocol (Zhang et al. 2018) gave; the category means must match
``expected_2afc.json``. JND mAP and the correlations are checked on hand-computable cases and
against a literal loop transcription of the LPIPS/VOC definition.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from spips_pyiqa.metrics.bapps_scores import (
    CategoryScore,
    category_average,
    jnd_map,
    markdown_table,
    preference_correlations,
    preference_for_p1,
    score_2afc_category,
    score_jnd_category,
    to_distance,
    two_afc_mean,
    two_afc_score,
)

JUDGMENTS = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'bapps_val_judgments'
VAL_CATEGORIES = ('traditional', 'cnn', 'superres', 'deblur', 'color', 'frameinterp')


def _load_category(category: str) -> dict[str, np.ndarray]:
    if not JUDGMENTS.is_dir():
        pytest.skip(f'BAPPS val judgments not available: {JUDGMENTS} is absent')
    columns = np.loadtxt(JUDGMENTS / f'{category}.csv', delimiter=',', usecols=(1, 2, 3, 4))
    return dict(zip(('d0', 'd1', 'score', 'judge'), columns.T))


def _expected_2afc_x100() -> dict[str, float]:
    if not JUDGMENTS.is_dir():
        pytest.skip(f'BAPPS val judgments not available: {JUDGMENTS} is absent')
    return json.loads((JUDGMENTS / 'expected_2afc.json').read_text())['expected_2afc_x100']


# --- 2AFC on the real BAPPS judgments -------------------------------------------------------------


@pytest.mark.parametrize('category', VAL_CATEGORIES)
def test_2afc_reproduces_per_triplet_scores(category):
    data = _load_category(category)
    scores = two_afc_score(data['d0'], data['d1'], data['judge'])
    np.testing.assert_allclose(scores, data['score'], rtol=0, atol=1e-6)


@pytest.mark.parametrize('category', VAL_CATEGORIES)
def test_2afc_reproduces_category_means(category):
    data = _load_category(category)
    expected = _expected_2afc_x100()[category]
    assert two_afc_mean(data['d0'], data['d1'], data['judge']) * 100 == pytest.approx(
        expected, abs=1e-3
    )


def test_real_data_has_ties_so_the_half_credit_is_exercised():
    data = _load_category('superres')
    ties = data['d0'] == data['d1']
    assert ties.sum() > 20  # 56 tied triplets: scoring them 0 or 1 would move the mean by > 1e-3
    np.testing.assert_array_equal(two_afc_score(data['d0'], data['d1'], data['judge'])[ties], 0.5)


def test_expected_file_covers_exactly_the_val_categories():
    assert set(_expected_2afc_x100()) == set(VAL_CATEGORIES)


# --- 2AFC units -----------------------------------------------------------------------------------


def test_2afc_credits_the_fraction_of_raters_agreeing():
    d0 = [0.1, 0.5, 0.3, 0.2]
    d1 = [0.5, 0.1, 0.3, 0.4]
    h = [0.2, 0.8, 0.6, 1.0]  # fraction preferring p1
    np.testing.assert_allclose(two_afc_score(d0, d1, h), [0.8, 0.8, 0.5, 0.0])
    assert two_afc_mean(d0, d1, h) == pytest.approx(0.525)


@pytest.mark.parametrize(
    ('d0', 'd1', 'h'),
    [([0.1, 0.2], [0.3], [0.5]), ([], [], []), ([0.1], [0.2], [1.2]), ([[0.1]], [[0.2]], [[0.5]])],
    ids=['length-mismatch', 'empty', 'h-above-1', 'two-dimensional'],
)
def test_2afc_rejects_malformed_input(d0, d1, h):
    with pytest.raises(ValueError):
        two_afc_score(d0, d1, h)


def test_to_distance_negates_similarities_only():
    np.testing.assert_array_equal(to_distance([1.0, 2.0], lower_better=True), [1.0, 2.0])
    np.testing.assert_array_equal(to_distance([1.0, 2.0], lower_better=False), [-1.0, -2.0])


# --- JND mAP --------------------------------------------------------------------------------------


def _lpips_style_map(d: np.ndarray, same: np.ndarray) -> float:
    """Literal loop transcription of the LPIPS JND protocol + VOC all-point AP (tie-free input)."""
    order = np.argsort(d)
    tp = fp = 0.0
    recalls, precisions = [0.0], [0.0]
    for index in order:
        tp += same[index]
        fp += 1.0 - same[index]
        recalls.append(tp / same.sum())
        precisions.append(tp / (tp + fp))
    recalls.append(1.0)
    precisions.append(0.0)
    for i in range(len(precisions) - 2, -1, -1):
        precisions[i] = max(precisions[i], precisions[i + 1])
    return sum(
        (recalls[i + 1] - recalls[i]) * precisions[i + 1]
        for i in range(len(recalls) - 1)
        if recalls[i + 1] != recalls[i]
    )


def test_jnd_perfect_ranking_is_one():
    assert jnd_map([0.1, 0.2, 0.3, 0.4], [1, 1, 0, 0]) == pytest.approx(1.0)


def test_jnd_reversed_ranking_by_hand():
    # sorted same = [0, 0, 1, 1]: precision 1/3 at recall 1/2, 1/2 at recall 1 -> envelope 1/2
    assert jnd_map([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]) == pytest.approx(0.5)


def test_jnd_interleaved_ranking_by_hand():
    # sorted same = [1, 0, 1]: (R, P) = (1/2, 1), (1/2, 1/2), (1, 2/3) -> 1/2 * 1 + 1/2 * 2/3
    assert jnd_map([0.1, 0.2, 0.3], [1, 0, 1]) == pytest.approx(5 / 6)


def test_jnd_fractional_same_by_hand():
    # each pair is half "same": precision stays 1/2 at every recall
    assert jnd_map([0.1, 0.2], [0.5, 0.5]) == pytest.approx(0.5)


def test_jnd_ties_are_one_threshold_whatever_the_input_order():
    # argsort-based LPIPS code gives 1.0 or 0.5 depending on order; one operating point gives 0.5
    assert jnd_map([0.1, 0.1], [1, 0]) == pytest.approx(0.5)
    assert jnd_map([0.1, 0.1], [0, 1]) == pytest.approx(0.5)
    assert jnd_map([0.1, 0.2, 0.2, 0.3], [1, 1, 0, 0]) == jnd_map(
        [0.2, 0.1, 0.3, 0.2], [0, 1, 0, 1]
    )


def test_jnd_matches_the_lpips_definition_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.uniform(size=50)
        same = rng.integers(0, 4, size=50) / 3
        assert jnd_map(d, same) == pytest.approx(_lpips_style_map(d, same), abs=1e-12)


def test_jnd_is_invariant_to_permutation():
    rng = np.random.default_rng(1)
    d, same = rng.uniform(size=30), rng.integers(0, 2, size=30).astype(float)
    order = rng.permutation(30)
    assert jnd_map(d[order], same[order]) == pytest.approx(jnd_map(d, same), abs=1e-12)


@pytest.mark.parametrize(
    ('d', 'same'),
    [([0.1, 0.2], [0, 0]), ([0.1, 0.2], [1]), ([0.1, 0.2], [1, -0.5])],
    ids=['no-same-pair', 'length-mismatch', 'negative-same'],
)
def test_jnd_rejects_undefined_input(d, same):
    with pytest.raises(ValueError):
        jnd_map(d, same)


# --- correlations ---------------------------------------------------------------------------------


def test_preference_is_positive_when_p1_is_closer():
    np.testing.assert_allclose(preference_for_p1([0.5, 0.1], [0.2, 0.3]), [0.3, -0.2])


def test_correlations_are_one_for_a_metric_ordering_like_people():
    d0 = np.array([0.4, 0.3, 0.2, 0.1, 0.5])
    d1 = np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    h = np.array([0.8, 0.6, 0.4, 0.2, 1.0])  # h = d0 - d1 + 0.5 exactly
    result = preference_correlations(d0, d1, h)
    assert (result.plcc, result.srcc, result.krcc) == pytest.approx((1.0, 1.0, 1.0))
    flipped = preference_correlations(d1, d0, h)
    assert (flipped.plcc, flipped.srcc, flipped.krcc) == pytest.approx((-1.0, -1.0, -1.0))


def test_correlations_equal_scipy_on_random_data():
    rng = np.random.default_rng(2)
    d0, d1 = rng.uniform(size=40), rng.uniform(size=40)
    h = rng.integers(0, 6, size=40) / 5
    result = preference_correlations(d0, d1, h)
    assert result.plcc == pytest.approx(stats.pearsonr(d0 - d1, h)[0])
    assert result.srcc == pytest.approx(stats.spearmanr(d0 - d1, h)[0])
    assert result.krcc == pytest.approx(stats.kendalltau(d0 - d1, h)[0])


# --- category rows and table ----------------------------------------------------------------------


def test_category_rows_and_markdown_table():
    d0, d1, h = [0.1, 0.5, 0.3], [0.5, 0.1, 0.2], [0.2, 0.8, 0.4]
    two_afc = score_2afc_category('cnn', d0, d1, h)
    jnd = score_jnd_category('cnn', [0.1, 0.2, 0.3], [1, 0, 1])
    assert (two_afc.task, two_afc.category, two_afc.n) == ('2afc', 'cnn', 3)
    assert two_afc.values['2afc'] == pytest.approx(two_afc_mean(d0, d1, h))
    assert set(two_afc.values) == {'2afc', 'plcc', 'srcc', 'krcc'}
    assert jnd.values == {'jnd_map': pytest.approx(5 / 6)}
    lines = markdown_table([two_afc, jnd]).splitlines()
    assert lines[0] == '| task | category | n | 2afc | plcc | srcc | krcc | jnd_map |'
    assert lines[1] == '|---|---|---|---|---|---|---|---|'
    assert lines[2].startswith(f'| 2afc | cnn | 3 | {two_afc.values["2afc"] * 100:.2f} |')
    assert lines[3] == '| jnd | cnn | 3 |  |  |  |  | 83.33 |'


def test_category_score_is_immutable():
    row = CategoryScore('2afc', 'a', 10, {'2afc': 0.6})
    with pytest.raises(AttributeError):
        row.n = 11


def test_category_average_is_unweighted():
    rows = [
        CategoryScore('2afc', 'a', 10, {'2afc': 0.6}),
        CategoryScore('2afc', 'b', 1000, {'2afc': 0.8}),
    ]
    assert category_average(rows, '2afc') == pytest.approx(0.7)
    with pytest.raises(ValueError):
        category_average([], '2afc')
