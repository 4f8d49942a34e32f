"""``python -m spips_pyiqa score`` at scale: batches of same-size pairs, ``--out`` CSV written through
a durable journal and resumed without rescoring, and sharding under a 2-process ``torchrun`` that
prints and writes exactly what one process does, resumes the same way and rescores changed inputs."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyiqa
import pytest
import torch
from PIL import Image

from spips_pyiqa.cli.score import cli
from spips_pyiqa.data.distortions import distort, photo
from spips_pyiqa.data.image_io import load_image
from spips_pyiqa.evaluation.scores_file import read_scores, scores_journal
from test_score_resume import _regenerate
from torchrun import launch_env, torchrun

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


class CountingMetric:
    """The real metric, counting the pairs it is asked to score."""

    def __init__(self, metric):
        self.metric, self.pairs = metric, 0

    def __call__(self, target, ref, **kwargs):
        self.pairs += target.shape[0]
        return self.metric(target, ref, **kwargs)


@pytest.fixture(scope='module')
def metric():
    return pyiqa.create_metric('spips', device='cpu')


@pytest.fixture
def counting(metric, monkeypatch):
    counter = CountingMetric(metric)
    monkeypatch.setattr(pyiqa, 'create_metric', lambda name, device=None, **kw: counter)
    return counter


def _save(path: Path, image: torch.Tensor) -> None:
    Image.fromarray((image[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)


def _folders(root: Path, count: int) -> tuple[Path, Path]:
    """``count`` pairs of two sizes (64x64 and 80x64), interleaved, so chunks mix sizes."""
    target, ref = root / 'target', root / 'ref'
    target.mkdir()
    ref.mkdir()
    for i in range(count):
        image = photo(PHOTOS[i % 4], 96)[..., : 64 + 16 * (i % 2), :64]
        _save(ref / f'img{i:02d}.png', image)
        _save(target / f'img{i:02d}.png', distort(image, 'noise', 1 + i % 3))
    return target, ref


def _expected(metric, target: Path, ref: Path) -> dict[str, float]:
    with torch.no_grad():
        return {p.name: metric(load_image(p), load_image(ref / p.name)).item() for p in sorted(target.iterdir())}


def _lines(text: str) -> dict[str, float]:
    return {name: float(value) for name, value in (line.split('\t') for line in text.strip().splitlines())}


def test_batches_of_mixed_sizes_score_as_one_pair_at_a_time(counting, metric, tmp_path, capsys):
    target, ref = _folders(tmp_path, 7)
    assert cli([str(target), str(ref), '--batch-size', '3', '--workers', '1']) == 0
    out = capsys.readouterr().out
    assert [line.split('\t')[0] for line in out.strip().splitlines()] == [f'img{i:02d}.png' for i in range(7)] + ['mean']
    lines, expected = _lines(out), _expected(metric, target, ref)
    for name, value in expected.items():
        assert lines[name] == pytest.approx(value, abs=1e-5)
    assert lines['mean'] == pytest.approx(sum(expected.values()) / 7, abs=1e-5)
    assert counting.pairs == 7


@pytest.mark.parametrize('cores, workers', [(2, 0), (8, 2)])
def test_score_decodes_ahead_with_the_default_workers(counting, tmp_path, capsys, monkeypatch, cores, workers):
    """Without ``--workers``, several chunks are decoded by ``default_workers`` processes: none on a
    2-core machine, two on a larger one."""
    import spips_pyiqa.evaluation.folder_scoring as folder_scoring

    used, loader = [], folder_scoring.chunk_loader
    monkeypatch.setattr('os.cpu_count', lambda: cores)
    monkeypatch.setattr(folder_scoring, 'chunk_loader', lambda *args: used.append(args[2]) or loader(*args))
    target, ref = _folders(tmp_path, 3)
    assert cli([str(target), str(ref), '--batch-size', '1']) == 0
    assert used == [workers] and counting.pairs == 3


def test_out_resumes_an_interrupted_run_without_rescoring(counting, metric, tmp_path, capsys):
    target, ref = _folders(tmp_path, 6)
    good = (target / 'img04.png').read_bytes()
    (target / 'img04.png').write_bytes(good[:200])  # the run stops at the fifth pair
    out = tmp_path / 'scores.csv'
    argv = [str(target), str(ref), '--out', str(out), '--batch-size', '2']
    assert cli(argv) == 1
    first = capsys.readouterr()
    last = first.err.rstrip('\n').split('\n')[-1]  # after the progress bar
    assert last.startswith('error: cannot read image') and 'img04.png' in last
    assert len(first.out.strip().splitlines()) == 4  # the pairs before the unreadable one
    assert not out.exists()  # no complete file yet; the journal keeps what was scored
    journal = scores_journal(out, {})
    assert [row['name'] for row in journal.read()] == [f'img{i:02d}.png' for i in (0, 1, 2, 3, 5)]
    with journal.partial.open('a') as handle:  # a row torn by the interruption
        handle.write('img05.png,0.1')

    (target / 'img04.png').write_bytes(good)
    counting.pairs = 0
    assert cli(argv) == 0
    second = capsys.readouterr()
    assert counting.pairs == 1  # img04 only: img05 was scored in the same chunk before the stop
    assert 'resuming: 5 of 6 pairs' in second.err
    lines, expected = _lines(second.out), _expected(metric, target, ref)
    assert lines.keys() == {*expected, 'mean'}
    for name, value in expected.items():
        assert lines[name] == pytest.approx(value, abs=1e-5)
    assert not journal.partial.exists()
    rows = read_scores(out)
    assert [row.name for row in rows] == sorted(expected)
    for row in rows:
        assert row.values['spips'] == pytest.approx(expected[row.name], abs=1e-6)
        assert Path(row.target) == (target / row.name).resolve()

    counting.pairs = 0
    assert cli(argv) == 0  # complete: nothing left to score, the same lines again
    assert counting.pairs == 0 and capsys.readouterr().out == second.out


@pytest.mark.slow
def test_score_distributed_two_processes_print_and_write_what_one_does(tmp_path):
    target, ref = _folders(tmp_path, 9)
    common = [str(target), str(ref), '--metric', 'spips,psnr', '--batch-size', '2', '--map', str(tmp_path / 'maps')]
    one = subprocess.run([sys.executable, '-m', 'spips_pyiqa', 'score', *common, '--out', 'one.csv'],
                         cwd=tmp_path, env=launch_env(), capture_output=True, text=True, timeout=240, check=False)
    assert one.returncode == 0, one.stderr[-2000:]
    maps_one = {p.name: p.read_bytes() for p in (tmp_path / 'maps').iterdir()}
    for path in (tmp_path / 'maps').iterdir():
        path.unlink()
    two = torchrun(2, ['-m', 'spips_pyiqa', 'score', *common, '--out', 'two.csv'], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout == one.stdout  # same lines, same order, printed once (rank 0)
    assert len(two.stdout.strip().splitlines()) == 11  # header, 9 pairs, mean
    assert (tmp_path / 'two.csv').read_bytes() == (tmp_path / 'one.csv').read_bytes()
    assert {p.name: p.read_bytes() for p in (tmp_path / 'maps').iterdir()} == maps_one

    _regenerate(target / 'img03.png', 3)  # resumed under torchrun: the changed pair alone is rescored
    again = torchrun(2, ['-m', 'spips_pyiqa', 'score', *common, '--out', 'two.csv'], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert '1 of 9 rescored: inputs changed' in again.stderr
    fresh = subprocess.run([sys.executable, '-m', 'spips_pyiqa', 'score', *common[:6], '--out', 'fresh.csv'],
                           cwd=tmp_path, env=launch_env(), capture_output=True, text=True, timeout=240, check=False)
    assert fresh.returncode == 0, fresh.stderr[-2000:]
    assert [line.split('\t')[0] for line in again.stdout.splitlines()] == [
        line.split('\t')[0] for line in fresh.stdout.splitlines()]
    for resumed, anew in zip(read_scores(tmp_path / 'two.csv'), read_scores(tmp_path / 'fresh.csv'), strict=True):
        assert resumed.stamp == anew.stamp and resumed.values.keys() == anew.values.keys()
        for metric, value in anew.values.items():  # fresh: without maps, SPIPS's map-free path (to 1e-8)
            assert resumed.values[metric] == pytest.approx(value, abs=1e-6), (resumed.name, metric)


@pytest.mark.parametrize('n_chunks', [0, 1, 5, 6])
@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_chunk_rounds_deal_every_chunk_once_in_equal_rounds(n_chunks, world_size):
    from spips_pyiqa.utils.distributed import DistInfo, chunk_rounds

    rounds = [chunk_rounds(n_chunks, DistInfo(rank, world_size)) for rank in range(world_size)]
    assert len({len(r) for r in rounds}) == 1  # every rank meets every gather
    dealt = [k for r in rounds for k in r if k is not None]
    assert sorted(dealt) == list(range(n_chunks))
    for round_ in zip(*rounds):  # round r holds chunks r*world .. r*world + world - 1, rank order
        assert [k for k in round_ if k is not None] == sorted(k for k in round_ if k is not None)
