"""``score`` with any pyiqa full-reference metrics: CSV values equal ``pyiqa.create_metric`` on the
same tensors, each pair decoded once, same-size pairs batched per metric, unknown and no-reference
names refused, a rerun adding a metric computes that column alone, and the methods table."""

import csv
import re

import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image

import spips_pyiqa.data.pair_loader as pair_loader
from score_fixtures import methods_fixture, pair_folders
from spips_pyiqa.cli.score import cli
from spips_pyiqa.data.image_io import decode_image, load_image
from spips_pyiqa.data.pair_loader import LoadedPair, default_workers, same_size_groups, unit_batch
from spips_pyiqa.evaluation.method_comparison import bootstrap_means
from spips_pyiqa.evaluation.scores_file import read_scores


def _expected(name: str, target, ref) -> dict[str, float]:
    metric = pyiqa.create_metric(name, device='cpu')
    with torch.no_grad():
        return {p.name: metric(load_image(p), load_image(ref / p.name)).item() for p in sorted(target.iterdir())}


def _check_csv_against_pyiqa(tmp_path, names):
    target, ref = pair_folders(tmp_path, 5)
    out = tmp_path / 'scores.csv'
    assert cli([str(target), str(ref), '--metric', ','.join(names), '--out', str(out), '--batch-size', '4']) == 0
    rows = {row.name: row.values for row in read_scores(out)}
    for name in names:
        for image, value in _expected(name, target, ref).items():
            assert rows[image][name] == pytest.approx(value, abs=1e-5, rel=1e-6), (name, image)


def test_csv_values_equal_create_metric_psnr_ssim_spips(tmp_path):
    _check_csv_against_pyiqa(tmp_path, ['psnr', 'ssim', 'spips'])


@pytest.mark.slow
def test_csv_values_equal_create_metric_lpips_dists(tmp_path):
    _check_csv_against_pyiqa(tmp_path, ['lpips', 'dists'])


def test_header_says_each_direction_and_lines_carry_every_metric(tmp_path, capsys):
    target, ref = pair_folders(tmp_path, 2)
    out = tmp_path / 'scores.csv'
    assert cli([str(target), str(ref), '--metric', 'psnr,ssim,spips', '--out', str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == 'name\tpsnr\tssim\tspips'
    assert [line.split('\t')[0] for line in lines[1:]] == ['img00.png', 'img01.png', 'mean']
    with out.open() as handle:
        header = next(csv.reader(handle))
    assert header[:6] == ['name', 'target', 'ref', 'psnr (higher is better)', 'ssim (higher is better)',
                          'spips (lower is better)']


@pytest.mark.parametrize('names, message', [
    ('spips,niqe', r'niqe is a no-reference metric'),
    ('lpip', r"unknown metric 'lpip' \(did you mean lpips"),
    ('spips,', r'name at least one metric'),
])
def test_unknown_and_no_reference_metrics_are_refused_with_the_fr_names(tmp_path, capsys, names, message):
    target, ref = pair_folders(tmp_path, 1)
    assert cli([str(target), str(ref), '--metric', names]) == 2
    captured = capsys.readouterr()
    assert captured.out == '' and captured.err.count('\n') == 1
    assert re.search(message, captured.err), captured.err
    listed = captured.err.split('full-reference metrics: ')[1].strip().split(', ')
    assert {'psnr', 'ssim', 'lpips', 'dists', 'spips'} <= set(listed) and 'niqe' not in listed


class Counting:
    """Real pyiqa metrics, counting the pairs and batch sizes each is asked to score."""

    def __init__(self, monkeypatch):
        self.pairs, self.batches = {}, {}
        create = pyiqa.create_metric

        def counted(name, **kwargs):
            metric = create(name, **kwargs)

            def call(target, ref, **options):
                self.pairs[name] = self.pairs.get(name, 0) + target.shape[0]
                self.batches.setdefault(name, []).append(target.shape[0])
                return metric(target, ref, **options)

            return call

        monkeypatch.setattr(pyiqa, 'create_metric', counted)


def test_pairs_decoded_once_and_batched_per_metric_by_size(tmp_path, monkeypatch, capsys):
    target, ref = pair_folders(tmp_path, 6)  # sizes alternate: 3 pairs of 64x64, 3 of 80x64
    reads = []
    monkeypatch.setattr(pair_loader, 'decode_image', lambda path: reads.append(path) or decode_image(path))
    counting = Counting(monkeypatch)
    assert cli([str(target), str(ref), '--metric', 'psnr,ssim', '--batch-size', '6', '--workers', '0']) == 0
    assert sorted(reads) == sorted([*target.iterdir(), *ref.iterdir()])  # each file once, for both metrics
    assert counting.batches == {'psnr': [3, 3], 'ssim': [3, 3]}


def test_resume_adds_a_metric_without_rescoring_the_others(tmp_path, monkeypatch, capsys):
    target, ref = pair_folders(tmp_path, 4)
    out = tmp_path / 'scores.csv'
    assert cli([str(target), str(ref), '--metric', 'psnr', '--out', str(out)]) == 0
    before = {row.name: row.values for row in read_scores(out)}
    capsys.readouterr()
    counting = Counting(monkeypatch)
    assert cli([str(target), str(ref), '--metric', 'psnr,ssim', '--out', str(out)]) == 0
    assert counting.pairs == {'ssim': 4}
    assert 'resuming from' in capsys.readouterr().err
    after = {row.name: row.values for row in read_scores(out)}
    assert {name: values['psnr'] for name, values in after.items()} == {n: v['psnr'] for n, v in before.items()}
    expected = _expected('ssim', target, ref)
    assert all(after[name]['ssim'] == pytest.approx(value, abs=1e-6) for name, value in expected.items())
    counting.pairs.clear()
    assert cli([str(target), str(ref), '--metric', 'ssim', '--out', str(out)]) == 0  # psnr column kept
    assert counting.pairs == {} and {row.name: row.values for row in read_scores(out)} == after


def test_bootstrap_interval_has_the_width_of_the_standard_error():
    values = np.random.default_rng(1).normal(0.5, 0.2, 400)
    means = bootstrap_means(values)
    low, high = np.quantile(means, [0.025, 0.975])
    assert (high - low) / 2 == pytest.approx(1.96 * values.std() / np.sqrt(400), rel=0.12)
    assert means.mean() == pytest.approx(values.mean(), abs=0.003)


def test_methods_table_csvs_and_figure(tmp_path, capsys):
    ref, methods = methods_fixture(tmp_path / 'data')
    results = tmp_path / 'results'
    argv = ['--ref', str(ref), '--methods', *map(str, methods), '--metric', 'psnr,ssim', '--out-dir', str(results)]
    assert cli(argv) == 0
    printed = capsys.readouterr().out
    assert printed == (results / 'table.md').read_text()
    with (results / 'table.csv').open() as handle:
        table = {row['method']: row for row in csv.DictReader(handle)}
    assert list(table) == ['noise', 'blur', 'jpeg']
    means = {}
    for method in table:
        rows = read_scores(results / f'{method}.csv')
        assert len(rows) == 4 and table[method]['images'] == '4'
        for metric, direction in (('psnr', 'higher'), ('ssim', 'higher')):
            column = f'{metric} ({direction} is better)'
            mean = np.mean([row.values[metric] for row in rows])
            means[method, metric] = mean
            assert float(table[method][column]) == pytest.approx(mean, rel=1e-6)
            assert float(table[method][f'{column} ci95 low']) < mean < float(table[method][f'{column} ci95 high'])
    for metric in ('psnr', 'ssim'):  # ranks: 1 for the highest mean
        order = sorted(table, key=lambda m: -means[m, metric])
        ranks = re.findall(r'^\| (\w+) \| (\d) \| (\d) \|$', printed, flags=re.M)
        column = 1 if metric == 'psnr' else 2
        assert [name for name, *r in sorted(ranks, key=lambda r: r[column])] == order
    assert 'Rank agreement between metrics' in printed
    with Image.open(results / 'distributions.png') as figure:
        assert figure.format == 'PNG' and figure.size[0] > 300


def test_same_size_pairs_are_batched_up_to_the_pixel_budget():
    """Same-size pairs of one pixel type share batches of at most ``max_pixels`` target pixels, one
    pair at least, in order; pairs of other sizes or types and unreadable ones never join them."""
    def pair(index, height, width, error=None, dtype=torch.uint8):
        image = None if error else torch.zeros(height, width, 3, dtype=dtype)
        return LoadedPair(index, image, image, error)

    chunk = [pair(0, 64, 64), pair(1, 64, 64), pair(2, 32, 32), pair(3, 64, 64), pair(4, 64, 64, 'unreadable'),
             pair(5, 64, 64), pair(6, 200, 200), pair(7, 200, 200), pair(8, 64, 64, dtype=torch.uint16)]
    groups = same_size_groups(chunk, max_pixels=2 * 64 * 64 + 1)
    assert [[p.index for p in group] for group in groups] == [[0, 1], [3, 5], [2], [6], [7], [8]]
    assert [[p.index for p in g] for g in same_size_groups(chunk)] == [[0, 1, 3, 5], [2], [6, 7], [8]]


def test_a_batch_of_decoded_pairs_is_what_load_image_reads(tmp_path):
    """``unit_batch`` of the integer pixels that decoding workers hand over equals ``load_image`` of
    the same files, bit for bit, for 8-bit and 16-bit images, and 16-bit ones keep all 16 bits."""
    import cv2

    rng = np.random.default_rng(0)
    eight = [rng.integers(0, 256, (5, 7, 3)).astype(np.uint8) for _ in range(2)]
    sixteen = rng.integers(0, 65536, (5, 7, 3)).astype(np.uint16)
    for name, pixels in zip('ab', eight):
        Image.fromarray(pixels).save(tmp_path / f'{name}.png')
    cv2.imwrite(str(tmp_path / 'c.png'), sixteen[..., ::-1])  # Pillow cannot write 16-bit RGB
    a, b, c = (tmp_path / f'{name}.png' for name in 'abc')
    pairs = [LoadedPair(i, decode_image(t), decode_image(r)) for i, (t, r) in enumerate([(a, b), (b, a), (c, c)])]
    assert [p.target.dtype for p in pairs] == [torch.uint8, torch.uint8, torch.uint16]
    groups = same_size_groups(pairs)
    assert [[p.index for p in g] for g in groups] == [[0, 1], [2]]
    for group, (targets, refs) in zip(groups, [((a, b), (b, a)), ((c,), (c,))]):
        target, ref = unit_batch(group)
        assert torch.equal(target, torch.cat([load_image(f) for f in targets]))
        assert torch.equal(ref, torch.cat([load_image(f) for f in refs]))
    expected = torch.from_numpy(sixteen.astype(np.float32) / 65535.0).permute(2, 0, 1)[None]
    assert torch.equal(load_image(c), expected)


@pytest.mark.parametrize('cores, chunks, device, expected', [
    (2, 1, 'cpu', 0), (2, 5, 'cpu', 0), (1, 5, 'cpu', 0), (None, 5, 'cpu', 0), (3, 2, 'cpu', 2), (16, 9, 'cpu', 2),
    (16, 1, 'cpu', 0), (2, 5, 'cuda', 2), (2, 1, 'cuda', 0)])
def test_default_workers_decode_ahead_only_with_a_core_to_spare(monkeypatch, cores, chunks, device, expected):
    """One chunk: nothing to decode ahead (0); more: two decoding processes, but none on a CPU of two
    cores or fewer, where a decoder takes a core from the metric (a GPU computes while they decode)."""
    monkeypatch.setattr('os.cpu_count', lambda: cores)
    assert default_workers(chunks, torch.device(device)) == expected
