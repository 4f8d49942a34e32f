"""The reference-recovery test (``benchmark --only objective``) on a tiny configuration: 64 px, a few
Adam steps, psnr and spips (the real run is minutes; these checks are seconds)."""

import pytest
import torch

from spips_pyiqa.benchmark import objective
from spips_pyiqa.benchmark import run as benchmark
from spips_pyiqa.benchmark.objective_report import START_ROW, checkpoint_table, column, objective_tables
from spips_pyiqa.benchmark.tables import read_table_rows
from spips_pyiqa.metric_configs import LABEL_FREE, LABEL_FREE_SUFFIX, VARIANTS

PHOTOS = ('astronaut', 'coffee')
STEPS = 6


def _tiny(names=('psnr', 'spips')) -> objective.ObjectiveRun:
    return objective.run_objective(list(names), PHOTOS, size=64, steps=STEPS, every=3, say=lambda line: None)


@pytest.fixture(scope='module')
def tiny() -> objective.ObjectiveRun:
    return _tiny()


def test_default_objectives_are_read_from_the_variants_table():
    names = objective.default_objectives()
    compared = [n for n, v in VARIANTS.items() if v.human_trained]
    assert names[:len(compared)] == compared
    twins = {n + LABEL_FREE_SUFFIX for n in compared if VARIANTS[n].heads != LABEL_FREE}
    assert set(names[len(compared):]) == twins | set(objective.BASELINES)
    assert len(names) == len(set(names))


def test_the_run_is_deterministic(tiny):
    again = _tiny()
    for name, recovery in tiny.recoveries.items():
        assert torch.equal(recovery.result, again.recoveries[name].result), name
        assert torch.equal(recovery.psnr, again.recoveries[name].psnr), name
        for step, scores in recovery.checkpoints.items():
            assert all(torch.equal(scores[m], again.recoveries[name].checkpoints[step][m]) for m in scores)


def test_each_run_starts_from_the_distorted_images_and_leaves_the_references_alone(tiny):
    refs = torch.cat([objective.reference(p, 64) for p in PHOTOS]).repeat(len(objective.STARTS), 1, 1, 1)
    assert torch.equal(tiny.refs, refs)
    starts = torch.cat([objective.start_image(r[None], s, objective.SEED + i)
                        for s in objective.STARTS for i, r in enumerate(refs[:len(PHOTOS)])])
    assert torch.equal(tiny.start_images, starts)
    assert (tiny.start_scores['psnr'] < 30).all()  # the starts are clearly distorted
    for name, recovery in tiny.recoveries.items():
        assert torch.equal(recovery.psnr[0], tiny.start_scores['psnr']), name  # step 0 is the start
        assert recovery.psnr.shape == (STEPS + 1, len(refs))
        assert sorted(recovery.checkpoints) == [3, STEPS]
        assert 0 <= recovery.result.min() and recovery.result.max() <= 1  # projected onto [0, 1]


def test_minimising_each_metric_improves_it_and_psnr_rises(tiny):
    for name, recovery in tiny.recoveries.items():
        final, start = recovery.checkpoints[STEPS][name], tiny.start_scores[name]
        better = final < start if tiny.lower_better[name] else final > start
        assert better.all(), name  # the objective moved the right way on every image
    psnr = tiny.recoveries['psnr']
    assert (psnr.psnr[-1] > psnr.psnr[0] + 1).all()  # 1 dB in 6 steps from every start
    assert (psnr.checkpoints[STEPS]['ssim'] > tiny.start_scores['ssim']).all()


def test_one_batch_is_the_same_as_one_run_per_image():
    """Images do not interact. Compared in bulk: Adam steps every pixel by about ``LR`` whatever its
    gradient's size, so a near-zero gradient entry whose float rounding differs with the batch size
    (oneDNN blocks batches differently) may step the other way, up to ``2 LR``; any coupling of
    images moves every pixel's path, by the order of the distance moved (~0.03 here)."""
    metrics = objective.load_objectives(['psnr', 'spips'])
    refs = torch.cat([objective.reference(p, 64) for p in PHOTOS])
    starts = torch.cat([objective.start_image(r[None], 'blur+noise', i) for i, r in enumerate(refs)])
    steps = 3
    batch = objective.recover(metrics['spips'], starts, refs, steps, objective.LR, metrics, steps)
    for i in range(len(refs)):
        alone = objective.recover(metrics['spips'], starts[i:i + 1], refs[i:i + 1], steps, objective.LR, metrics, steps)
        difference = (alone.result - batch.result[i:i + 1]).abs()
        assert (alone.result - starts[i:i + 1]).abs().mean() > 0.01  # the run moved
        assert difference.mean() < 5e-4 and difference.max() <= 2 * objective.LR * steps


def test_tables_have_the_documented_columns_and_ranking(tiny):
    tables = objective_tables(tiny, 'Machine: test.')
    ranking, detail = tables['objective_ranking'], tables['objective']
    measures = [f'{m} {s}' for m in objective.MEASURES for s in objective.STARTS]
    assert ranking.columns == ['objective', 'mean PSNR rank', *measures, 'seconds']
    assert [r['objective'] for r in ranking.rows] == [START_ROW, 'psnr', 'spips']  # psnr ranks first on PSNR
    assert detail.columns == ['start', 'objective', 'PSNR rank', 'psnr ↑', 'ssim ↑', 'spips ↓', 'seconds']
    assert len(detail.rows) == len(objective.STARTS) * 3
    for index, start in enumerate(objective.STARTS):
        rows = [r for r in detail.rows if r['start'] == start]
        assert rows[0]['objective'] == START_ROW
        assert rows[0]['psnr ↑'] == pytest.approx(tiny.start_scores['psnr'][index * 2:index * 2 + 2].mean().item())
        assert [r['PSNR rank'] for r in rows[1:]] == [1, 2]
        assert rows[1]['psnr ↑'] >= rows[2]['psnr ↑']
        final = tiny.recoveries[rows[1]['objective']].checkpoints[STEPS]['spips'][index * 2:index * 2 + 2]
        assert rows[1]['spips ↓'] == pytest.approx(final.mean().item())
    text = '\n'.join(ranking.notes)
    assert 'Ding et al., IJCV 2021' in text and 'Machine: test.' in text and 'load average' in text
    assert 'Where `spips` recovers less than another objective' in text
    checkpoints = checkpoint_table(tiny)
    assert len(checkpoints.rows) == len(tiny.refs) * (1 + 2 * 2)  # start + 2 objectives x 2 checkpoints
    assert column(tiny, 'spips') in checkpoints.columns


def test_a_metric_that_cannot_run_at_the_size_is_reported_not_run(tmp_path):
    out = tmp_path / 'out'
    args = ['--only', 'objective', '--objective-metrics', 'psnr,ms_ssim', '--objective-photos', 'astronaut',
            '--objective-steps', '2', '--out', str(out)]
    assert benchmark.cli(args) == 0
    text = (out / 'objective_ranking.md').read_text()
    assert '`ms_ssim` not run at 64 px: pyiqa raised RuntimeError' in text
    assert [r['objective'] for r in read_table_rows(out / 'objective_ranking.csv')] == [START_ROW, 'psnr']
    for name in ('objective_curves.png', 'objective_recovered.png'):
        assert (out / 'figures' / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert (out / 'objective_checkpoints.csv').is_file()
    readme = (out / 'README.md').read_text()
    assert '| [`objective`](objective.md) |' in readme and '`benchmark --only objective`' in readme
    assert '`spips_pyiqa/benchmark/objective.py`' in readme


def test_the_module_docstring_states_the_defaults():
    for name in ('SIZE', 'LR', 'STEPS', 'CHECK_EVERY'):
        assert f':data:`{name}` ({getattr(objective, name):g})' in objective.__doc__, name
    assert ', '.join(objective.PHOTOS) in objective.__doc__
