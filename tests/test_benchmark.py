"""Pieces of ``python -m spips_pyiqa benchmark`` (the benchmark runs themselves are not tests)."""

import csv
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spips_pyiqa.benchmark import run as benchmark
from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
from spips_pyiqa.data.bapps_prepare import collect_rows, default_output_dir, write_meta_info
from spips_pyiqa.data.mos_prepare import MosRow
from spips_pyiqa.benchmark.agreement import LiveDev, load_anchors
from spips_pyiqa.data.live_dev import default_live_dev
from spips_pyiqa.archs.backbone_layout import CPU_CONVOLUTIONS_ENV
from spips_pyiqa.benchmark.cache import ScoreCache, cache_key, metric_fingerprint, state_dict_sha256
from spips_pyiqa.benchmark.figures import scatter_figure
from spips_pyiqa.metrics.correlation import correlations, fit_logistic, logistic4, srcc_interval
from spips_pyiqa.benchmark.speed import (
    _ratios,
    memory_child,
    speed_inputs,
    time_interleaved,
)
from spips_pyiqa.benchmark.tables import Table, markdown, read_table_rows, write_table

LIVE_DEV = default_live_dev()
needs_live_dev = pytest.mark.skipif(
    not (LIVE_DEV / 'scores.csv').is_file(), reason=f'live_dev not found at {LIVE_DEV} (../shared absent)'
)


# ---------------------------------------------------------------------------------- correlations
def test_logistic_plcc_on_synthetic_monotone_data():
    rng = np.random.default_rng(0)
    x = np.sort(rng.uniform(0, 1, 60))
    y = logistic4(x, 80.0, 20.0, 0.5, 0.08) + rng.normal(0, 1.0, x.size)
    c = correlations(x, y)
    assert c.logistic and c.n == 60
    assert c.plcc > 0.98
    assert c.plcc > np.corrcoef(x, y)[0, 1]  # the fit removes the non-linearity
    assert 0.9 < c.srcc <= 1 and 0.7 < c.krcc <= 1
    flipped = correlations(-x, y)  # a metric ranking backwards shows up negative
    assert flipped.plcc == pytest.approx(-c.plcc, abs=1e-6)
    assert flipped.srcc == pytest.approx(-c.srcc)


def test_noise_free_monotone_data_is_perfect_and_fit_is_callable():
    x = np.linspace(-3, 3, 25)
    y = 100 / (1 + np.exp(-2 * x))
    c = correlations(x, y)
    assert c.srcc == pytest.approx(1) and c.krcc == pytest.approx(1) and c.plcc == pytest.approx(1, abs=1e-6)
    fitted = fit_logistic(x, y)
    np.testing.assert_allclose(fitted(x), y, atol=1e-3)


def test_small_or_constant_samples():
    few = correlations([1.0, 2.0, 3.0, 5.0], [1.0, 3.0, 2.0, 4.0])
    assert not few.logistic and few.n == 4 and np.isfinite(few.plcc)  # linear PLCC below 5 points
    assert all(math.isnan(v) for v in (correlations([1, 2], [2, 1]).srcc, correlations([1, 1, 1], [1, 2, 3]).plcc))
    with pytest.raises(ValueError, match='length mismatch'):
        correlations([1, 2, 3], [1, 2])


def test_srcc_interval():
    low, high = srcc_interval(0.9, 39)
    assert low < 0.9 < high < 1
    narrow = srcc_interval(0.9, 400)
    assert narrow[1] - narrow[0] < high - low
    assert all(math.isnan(v) for v in srcc_interval(0.9, 3))


def test_anchors_are_parsed_from_the_readme_text(tmp_path):
    readme = tmp_path / 'README.md'
    readme.write_text('# x\nAnchors measured on this set (pyiqa, SRCC):\nvif 0.966, ms_ssim 0.917,\nlpips-vgg 0.922.\n\nOther 0.5\n')
    assert load_anchors(readme) == {'vif': 0.966, 'ms_ssim': 0.917, 'lpips-vgg': 0.922}
    assert load_anchors(tmp_path / 'missing.md') == {}


# ---------------------------------------------------------------------------------- tables, cache
def test_table_is_written_as_csv_and_markdown(tmp_path):
    table = Table('T', ['metric', 'srcc', 'note'], notes=['n=3: small'], digits=2)
    table.rows += [{'metric': 'a', 'srcc': 0.91234, 'note': 'n/a (fails)'}, {'metric': 'b|c', 'srcc': float('nan')}]
    csv_path, md_path = write_table(table, tmp_path / 'out', 'table')
    text = md_path.read_text()
    assert text.startswith('### T\n\nn=3: small\n')
    assert '| a | 0.91 | n/a (fails) |' in text and '| b\\|c | n/a | n/a |' in text
    assert csv_path.read_text().startswith('# T\n# n=3: small\n')
    rows = read_table_rows(csv_path)
    assert rows == [{'metric': 'a', 'srcc': '0.91234', 'note': 'n/a (fails)'}, {'metric': 'b|c', 'srcc': '', 'note': ''}]
    assert markdown(table) == text


def test_cache_reuses_scores_and_computes_only_missing_items(tmp_path):
    calls = []

    def compute(items):
        calls.append(list(items))
        return [len(item) * 1.5 for item in items]

    cache = ScoreCache(tmp_path)
    first = cache.scores('data', 'm', 'k1', ['a', 'bb'], compute, {'metric': 'm'})
    np.testing.assert_array_equal(first, [1.5, 3.0])
    again = ScoreCache(tmp_path).scores('data', 'm', 'k1', ['bb', 'a'], compute)
    np.testing.assert_array_equal(again, [3.0, 1.5])
    assert calls == [['a', 'bb']]  # nothing recomputed, even in a new cache object
    cache.scores('data', 'm', 'k1', ['a', 'ccc'], compute)
    assert calls[-1] == ['ccc'] and cache.computed[('data', 'm')] == 1
    cache.scores('data', 'm-vgg', 'k1', ['a'], compute)
    cache.scores('data', 'm', 'k2', ['a'], compute)  # another key (weights/code/data): recomputed
    assert calls[-1] == ['a'] and len(calls) == 4
    files = sorted(p.name for p in (tmp_path / 'data').iterdir())  # m's stale k1 files are gone
    assert files == ['m-vgg__k1.csv', 'm-vgg__k1.json', 'm__k2.csv', 'm__k2.json']
    ScoreCache(None).scores('data', 'm', 'k1', ['a'], compute)  # no cache: always computed
    assert calls[-1] == ['a'] and len(calls) == 5


def test_cache_key_follows_weights_and_data():
    layer = torch.nn.Linear(2, 1)
    before = state_dict_sha256(layer)
    with torch.no_grad():
        layer.weight.add_(1e-3)
    assert state_dict_sha256(layer) != before
    fingerprint = {'metric': 'm', 'weights_sha256': before}
    assert cache_key(fingerprint, 'data1') == cache_key(dict(fingerprint), 'data1')
    assert cache_key(fingerprint, 'data1') != cache_key(fingerprint, 'data2')


def test_spips_fingerprint_names_its_cpu_convolutions(monkeypatch):
    """Scores computed with other convolution algorithms (another machine's choice) get another key."""
    import pyiqa

    keys = {}
    for mode in ('faster', 'plain'):
        monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, mode)
        keys[mode] = metric_fingerprint('spips', pyiqa.create_metric('spips', device='cpu'))
    assert keys['faster'].pop('cpu_convolutions') != keys['plain'].pop('cpu_convolutions')
    assert keys['faster'] == keys['plain']
    assert 'cpu_convolutions' not in metric_fingerprint('psnr', pyiqa.create_metric('psnr', device='cpu'))


# ---------------------------------------------------------------------------------- speed
def test_speed_tables_state_the_cpu_convolutions_once_per_choice(monkeypatch):
    import pyiqa
    from spips_pyiqa.benchmark.speed import _convolution_notes

    metrics = {}
    for name, mode in (('spips', 'faster'), ('spips-no-semantic', 'faster'), ('spips-label-free', 'plain')):
        monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, mode)
        metrics[name] = pyiqa.create_metric(name, device='cpu')
    metrics['lpips'] = pyiqa.create_metric('lpips', device='cpu')
    faster, plain = _convolution_notes(metrics)
    assert 'of spips, spips-no-semantic: slice1.0 SpaceToDepthConv2d, slice2.3 PlanarConv2d, slice3.6 WinogradConv2d' in faster
    assert 'of spips-label-free: slice1.0 Conv2d, slice2.3 Conv2d, slice3.6 Conv2d, slice4.8 Conv2d, slice5.10 Conv2d.' in plain


def test_speed_inputs_are_real_distorted_photos():
    target, ref = speed_inputs(64, 6)
    assert target.shape == ref.shape == (6, 3, 64, 64)
    assert 0 <= target.min() and target.max() <= 1
    assert not torch.equal(target, ref) and not torch.equal(ref[0], ref[1])
    big, _ = speed_inputs(1024, 1)  # photographs are upscaled, never padded
    assert big.shape == (1, 3, 1024, 1024) and big[..., :8, :8].std() > 0


def test_interleaved_timing_and_failures():
    def fails():
        raise ValueError('Image size should be larger than 176\nmore')

    times = time_interleaved({'lpips': lambda: None, 'slow': lambda: sum(range(20000)), 'bad': fails}, 3, torch.device('cpu'))
    assert len(times['lpips']) == len(times['slow']) == 3
    assert times['bad'] == 'ValueError: Image size should be larger than 176'
    ratios = _ratios(times, 'lpips')
    assert ratios['lpips'] == 1 and ratios['bad'] is None and ratios['slow'] > 0


def test_memory_child_reports_inference_peak():
    result = memory_child('psnr', 64, 2)
    assert result['inference_mib'] >= 0 and result['process_mib'] > 50
    assert 'VmHWM' in result['method'] or 'ru_maxrss' in result['method']


# ---------------------------------------------------------------------------------- figures, CLI
def test_scatter_figure(tmp_path):
    rows = tuple(MosRow('r.png', f'd{i}.png', 10.0 + 5 * i, 'r.png', k) for i, k in enumerate(['jpeg', 'wnoise'] * 4))
    dataset = LiveDev(tmp_path, rows, 'key')
    scores = {'a': np.arange(8.0), 'b': -np.arange(8.0) ** 2}
    lower = {'a': True, 'b': False}
    corr = {name: {'all': correlations(s if lower[name] else -s, dataset.dmos)} for name, s in scores.items()}
    path = scatter_figure(scores, lower, dataset, corr, tmp_path / 'fig' / 'scatter.png')
    assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_unknown_section_or_metric_is_refused(tmp_path, capsys):
    assert benchmark.cli(['--only', 'agreement,nope', '--out', str(tmp_path)]) == 2
    assert benchmark.cli(['--metrics', 'psnr,not-a-metric', '--out', str(tmp_path)]) == 2
    assert 'not-a-metric' in capsys.readouterr().err


def test_bapps_through_evaluate_and_missing_live_dev(tmp_path, capsys):
    root = make_synthetic_bapps(tmp_path / 'bapps', n_train=1, n_val=3, n_jnd=4, size=64, seed=0)
    out = tmp_path / 'out'
    args = ['--metrics', 'psnr', '--only', 'agreement', '--live-dev', str(tmp_path / 'none'), '--out', str(out)]
    assert benchmark.cli([*args, '--bapps', str(root)]) == 0  # not prepared: reported, not a crash
    assert 'prepare-bapps' in (out / 'agreement_bapps.md').read_text()
    assert 'live_dev not found' in capsys.readouterr().err
    write_meta_info(collect_rows(root), default_output_dir(root))
    assert benchmark.cli([*args, '--bapps', str(root)]) == 0
    rows = read_table_rows(out / 'agreement_bapps.csv')
    assert [r['metric'] for r in rows] == ['psnr']
    assert 0 <= float(rows[0]['2afc traditional']) <= 100 and rows[0]['jnd average']
    assert (out / 'bapps' / 'bapps_psnr.md').is_file()
    assert not (out / 'agreement_live_dev.md').exists()
    readme = (out / 'README.md').read_text()  # written by the command, listing what it wrote
    assert '[`agreement_bapps`](agreement_bapps.md)' in readme and '`spips_pyiqa/evaluation/bapps.py`' in readme


@needs_live_dev
def test_cli_agreement_on_a_live_dev_subset_then_from_cache(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    args = ['--metrics', 'psnr,spips', '--only', 'agreement', '--limit', '3', '--out', str(out)]
    assert benchmark.cli(args) == 0
    with (out / 'agreement_live_dev.csv').open() as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith('#')))
    assert [r['metric'] for r in rows] == ['psnr', 'spips'] and {r['n'] for r in rows} == {'3'}
    md = (out / 'agreement_live_dev.md').read_text()
    assert 'n=3: a small sample' in md and 'human-trained on live_dev' in md  # size and SPIPS provenance
    assert (out / 'RESULTS.md').read_text().count('### live_dev') == 2

    def must_not_score(self, target, ref):
        raise AssertionError(f'{self.name} recomputed despite the cache')

    monkeypatch.setattr(benchmark.BenchMetric, 'score', must_not_score)
    assert benchmark.cli(args) == 0
    assert Path(out / 'cache' / 'live_dev').is_dir()


def test_fusion_rule_table_marks_the_shipped_candidate(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from PIL import Image

    from spips_pyiqa.recipes import label_free_heads as default_heads
    from spips_pyiqa.benchmark.agreement import fusion_rule_table
    from spips_pyiqa.archs.groups import GROUPS

    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / f'd{i}.png')
        rows.append(MosRow('d0.png', f'd{i}.png', float(i), 'd0.png', 'jpeg'))
    dataset = LiveDev(tmp_path, tuple(rows), 'data')
    lambdas = {'a': {'traditional': 1.0, 'perceptual': 1.0, 'semantic': 1.0},
               'b': {'traditional': 1.0, 'perceptual': 1.0, 'semantic': 8.0}}
    monkeypatch.setattr(default_heads, 'FUSION_RULES', ('a', 'b'))
    monkeypatch.setattr(default_heads, 'fusion_weights', lambda net, rule: lambdas[rule])

    def fake_metric(name, heads, meta):
        """Scores 1, 2, ... in item order (= DMOS order); rule b's heads score them backwards."""
        sign = 1.0 if heads.fusion.weights[-1].item() < 0.5 else -1.0
        counter = itertools.count(1)
        return SimpleNamespace(
            name=name, lower_better=True, is_spips=True,
            fingerprint={'weights_sha256': state_dict_sha256(heads), **meta},
            metric=SimpleNamespace(net=SimpleNamespace(net='alex', groups=GROUPS, quality=heads)),
            score=lambda target, ref: sign * next(counter),
        )

    shipped = fake_metric('spips-label-free', default_heads.build_default_heads('alex', GROUPS, lambdas['a']), {'provenance': 'x'})
    cache = ScoreCache(tmp_path / 'cache')
    human = SimpleNamespace(is_spips=True)  # human-trained heads have no fusion-rule candidates
    table = fusion_rule_table({'spips-label-free': shipped, 'spips': human, 'psnr': SimpleNamespace(is_spips=False)},
                              dataset, cache, fake_metric)
    assert [(r['metric'], r['fusion rule'], r['shipped']) for r in table.rows] == [
        ('spips-label-free', 'a', 'yes'), ('spips-label-free', 'b', '')]
    assert table.rows[0]['SRCC'] == pytest.approx(1.0) and table.rows[1]['SRCC'] == pytest.approx(-1.0)
    assert table.rows[1]['lambda'] == 'traditional 0.100, perceptual 0.100, semantic 0.800'
    assert {p.name.split('__')[0] for p in (tmp_path / 'cache' / 'live_dev').glob('*.csv')} == {
        'spips-label-free', 'spips-label-free[fusion=b]'}


def test_scale_training_rate_is_read_between_the_first_and_last_logged_step():
    from spips_pyiqa.benchmark.scale import _steady_rate

    log = '\n'.join([
        '2026-11-23 16:02:05,000 INFO: Start training from epoch: 0, iter: 0',
        '2026-11-23 16:02:06,000 INFO: [one..][epoch:  0, iter:       5, lr:(1.000e-04,)] '
        '[eta: 0:00:01, time (data): 0.500 (0.100)] l_mos: 6.2e-01',
        '2026-11-23 16:02:08,500 INFO: [one..][epoch:  0, iter:      10, lr:(1.000e-04,)] '
        '[eta: 0:00:01, time (data): 0.400 (0.050)] l_mos: 6.2e-01',
        '2026-11-23 16:02:11,000 INFO: [one..][epoch:  0, iter:   1,015, lr:(1.000e-04,)] '
        '[eta: 0:00:00, time (data): 0.400 (0.100)] l_mos: 6.2e-01',
    ])
    rate, data_share = _steady_rate(log, global_batch=50)
    assert rate == pytest.approx((1015 - 5) * 50 / 5.0)
    assert data_share == pytest.approx(0.25)
    with pytest.raises(RuntimeError, match='fewer than two logged steps'):
        _steady_rate(log.splitlines()[1], 50)


def test_speed_targets_judge_the_loss_and_the_compiled_rows():
    """Issue 24's targets: loss <= 1.0x lpips' loss time, compiled <= 1.0x compiled lpips (the
    ratio of the two rows' ratios to eager lpips), at every size."""
    from spips_pyiqa.benchmark.speed import target_check

    ratios = {'spips': 0.9, 'spips (loss)': 1.05, 'spips (compiled)': 0.9, 'lpips (compiled)': 0.8,
              'spips (compiled) (loss)': 0.85, 'lpips (compiled) (loss)': 0.9}
    lines = target_check({(256, 8): {'ratios': ratios}})
    assert '256px b8: spips as a loss takes 1.05x lpips\' loss time: MISSES the <= 1.0x target.' in lines
    assert '256px b8: spips (compiled) takes 1.12x lpips (compiled)\'s time: MISSES the <= 1.0x target.' in lines
    assert '256px b8: spips (compiled) (loss) takes 0.94x lpips (compiled) (loss)\'s time: meets the <= 1.0x target.' in lines


def test_machine_line_names_the_cpu_family_and_model(tmp_path):
    """The speed tables' machine line tells CPU families apart (Zen 4 and Zen 5 are both 'AMD EPYC')."""
    cpuinfo = tmp_path / 'cpuinfo'
    cpuinfo.write_text('processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n'
                       'model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\n')
    assert benchmark.cpu_name(str(cpuinfo)) == 'AMD EPYC (family 26, model 2)'
    cpuinfo.write_text('model name\t: Some CPU\n')
    assert benchmark.cpu_name(str(cpuinfo)) == 'Some CPU'
