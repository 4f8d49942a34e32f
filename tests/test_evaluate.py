"""``python -m spips_pyiqa evaluate`` on a synthetic BAPPS folder (spips_pyiqa.benchmark.synthetic_bapps).

The fixture's simulated raters prefer the less distorted image and call small distortions "same",
so a metric that sees distortion severity must score 2AFC well above chance (0.5) and JND mAP well
above the worst ordering. SPIPS (lower-better) and PSNR (higher-better, flipped by ``to_distance``)
run through the real command (pyiqa's BAPPSDataset, DataLoader, pyiqa.create_metric); PSNR is also
recomputed here straight from the image files, independently of pyiqa's dataset, so a swapped p0/p1,
reference or sign shows up as a mismatch.
"""

import csv
import math
from pathlib import Path

import numpy as np
import pyiqa
import pytest
import torch
import yaml
from PIL import Image

from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
from spips_pyiqa.data.bapps_prepare import JND_CATEGORIES, VAL_2AFC_CATEGORIES
from spips_pyiqa.cli.prepare_bapps import cli as prepare_cli
from spips_pyiqa.metric_configs import VARIANTS
from spips_pyiqa.metrics.bapps_scores import score_2afc_category, score_jnd_category
from spips_pyiqa.cli.evaluate import cli
from spips_pyiqa.evaluation.bapps import load_options, metric_distances
from torchrun import torchrun

REPO = Path(__file__).resolve().parents[1]
OPTIONS = REPO / 'options' / 'test_spips.yml'
N_VAL, N_JND = 4, 6
CORRELATIONS = ('plcc', 'srcc', 'krcc')


@pytest.fixture(scope='module')
def bapps_root(tmp_path_factory) -> Path:
    """A prepared fixture: BAPPS layout plus the meta-info ``prepare-bapps`` writes."""
    root = make_synthetic_bapps(tmp_path_factory.mktemp('bapps'), 1, N_VAL, N_JND, size=64, seed=0)
    assert prepare_cli([str(root)]) == 0
    return root


def _run(root: Path, out: Path, *extra: str) -> int:
    return cli(['-opt', str(OPTIONS), '--bapps-root', str(root), '--out', str(out), *extra])


def _read_rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    """CSV rows keyed by (task, category)."""
    with path.open(newline='') as handle:
        return {(row['task'], row['category']): row for row in csv.DictReader(handle)}


@pytest.fixture(scope='module')
def results(bapps_root, tmp_path_factory) -> dict[str, tuple[dict, str]]:
    """metric -> (CSV rows, Markdown) of one ``evaluate`` run each."""
    out = tmp_path_factory.mktemp('results')
    runs = {}
    for metric in ('spips', 'psnr'):
        assert _run(bapps_root, out, '--metric', metric) == 0
        rows = _read_rows(out / f'bapps_{metric}.csv')
        runs[metric] = rows, (out / f'bapps_{metric}.md').read_text()
    return runs


# --- output format --------------------------------------------------------------------------------


@pytest.mark.parametrize('metric', ['spips', 'psnr'])
def test_table_has_every_category_and_values_in_range(results, metric):
    rows, markdown = results[metric]
    expected = [('2afc', c) for c in (*VAL_2AFC_CATEGORIES, 'average')]
    expected += [('jnd', c) for c in (*JND_CATEGORIES, 'average')]
    assert list(rows) == expected
    for (task, category), row in rows.items():
        assert row['metric'] == metric
        assert f'| {task} | {category} |' in markdown
        if task == '2afc':
            assert 0.0 <= float(row['2afc']) <= 1.0
            for key in CORRELATIONS:  # NaN only if a category's judgments were constant
                value = float(row[key])
                assert math.isnan(value) or -1.0 <= value <= 1.0
            assert row['jnd_map'] == ''
        else:
            assert 0.0 <= float(row['jnd_map']) <= 1.0
            assert row['2afc'] == ''
    assert int(rows['2afc', 'average']['n']) == N_VAL * len(VAL_2AFC_CATEGORIES)
    assert int(rows['jnd', 'average']['n']) == N_JND * len(JND_CATEGORIES)


def test_markdown_is_printed(bapps_root, tmp_path, capsys):
    assert _run(bapps_root, tmp_path, '--metric', 'psnr') == 0
    stdout = capsys.readouterr().out
    assert (tmp_path / 'bapps_psnr.md').read_text() in stdout
    assert f'wrote {tmp_path / "bapps_psnr.csv"}' in stdout


# --- the numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize('metric', ['spips', 'psnr'])
def test_severity_aware_metrics_beat_chance(results, metric):
    rows, _ = results[metric]
    assert float(rows['2afc', 'average']['2afc']) > 0.75
    assert float(rows['2afc', 'average']['srcc']) > 0.5
    assert float(rows['jnd', 'average']['jnd_map']) > 0.6


def _image(path: Path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def _psnr_files(metric, target: Path, ref: Path) -> float:
    return metric(_image(target), _image(ref)).item()


def test_psnr_rows_match_a_direct_computation(bapps_root, results):
    """Recompute PSNR from the files: d = -PSNR; 2AFC uses (p0|p1, ref), JND uses (p1, p0)."""
    psnr = pyiqa.create_metric('psnr', device='cpu')
    rows, _ = results['psnr']
    folder = bapps_root / '2afc' / 'val' / 'superres'
    stems = sorted(path.stem for path in (folder / 'p0').glob('*.png'))
    d0, d1 = (
        [-_psnr_files(psnr, folder / p / f'{s}.png', folder / 'ref' / f'{s}.png') for s in stems]
        for p in ('p0', 'p1')
    )
    h = [np.load(folder / 'judge' / f'{s}.npy').item() for s in stems]
    expected = score_2afc_category('superres', d0, d1, h).values
    for key, value in expected.items():
        assert float(rows['2afc', 'superres'][key]) == pytest.approx(value, abs=1e-6)

    folder = bapps_root / 'jnd' / 'val' / 'cnn'
    stems = sorted(path.stem for path in (folder / 'p0').glob('*.png'))
    d = [-_psnr_files(psnr, folder / 'p1' / f'{s}.png', folder / 'p0' / f'{s}.png') for s in stems]
    same = [np.load(folder / 'same' / f'{s}.npy').item() for s in stems]
    expected_map = score_jnd_category('cnn', d, same).values['jnd_map']
    assert float(rows['jnd', 'cnn']['jnd_map']) == pytest.approx(expected_map, abs=1e-6)


def test_higher_better_scores_become_distances():
    """PSNR of an image to itself is the highest score, so it must be the smallest distance."""
    psnr = pyiqa.create_metric('psnr', device='cpu')
    assert not psnr.lower_better
    clean = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1)))
    noisy = noisy.clamp(0, 1)
    distances = metric_distances(psnr, torch.cat([clean, noisy]), torch.cat([clean, clean]))
    assert distances[0] < distances[1]


# --- options --------------------------------------------------------------------------------------


def test_options_file_parses_with_overrides(tmp_path):
    raw = yaml.safe_load(OPTIONS.read_text())
    assert raw['num_gpu'] == 0 and raw['metric']['name'] == 'spips'
    options = load_options(OPTIONS)
    assert options.metric == 'spips' and options.pretrained_model_path is None
    assert options.device == torch.device('cpu')
    assert options.out_dir == Path('results') / raw['name']
    by_mode = {spec.mode: spec for spec in options.datasets}
    assert by_mode['2afc'].categories == VAL_2AFC_CATEGORIES
    assert by_mode['jnd'].categories == JND_CATEGORIES
    assert all(spec.phase == 'val' and spec.batch_size > 0 for spec in options.datasets)
    overridden = load_options(OPTIONS, 'lpips', tmp_path, tmp_path / 'out', tmp_path / 'x.pth')
    assert overridden.metric == 'lpips' and overridden.out_dir == tmp_path / 'out'
    assert overridden.pretrained_model_path == tmp_path / 'x.pth'
    assert all(spec.root == tmp_path for spec in overridden.datasets)
    assert all(spec.meta_dir == tmp_path / 'meta_info' for spec in overridden.datasets)
    from_strings = load_options(str(OPTIONS), 'lpips', str(tmp_path), str(tmp_path / 'out'), str(tmp_path / 'x.pth'))
    assert from_strings == overridden  # Python callers may pass strings


# --- errors ---------------------------------------------------------------------------------------


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if 'error:' in line]
    assert len(lines) == 1
    return lines[0]


def test_missing_bapps_root(tmp_path, capsys):
    assert _run(tmp_path / 'absent', tmp_path / 'out') == 1  # failure
    assert 'BAPPS root is not a folder' in _error_line(capsys)


def test_missing_meta_info_says_to_run_prepare_bapps(tmp_path, capsys):
    assert _run(tmp_path, tmp_path / 'out') == 1  # failure
    assert 'prepare-bapps' in _error_line(capsys)


@pytest.mark.parametrize(
    ('metric', 'message'),
    [('no-such-metric', "unknown metric 'no-such-metric'"), ('niqe', 'niqe is a no-reference metric')],
)
def test_unknown_or_no_reference_metric(bapps_root, tmp_path, capsys, metric, message):
    assert _run(bapps_root, tmp_path, '--metric', metric) == 2  # usage error: a name on the command line
    assert message in _error_line(capsys)


def test_shipped_checkpoint_reproduces_the_default_spips(bapps_root, results, tmp_path):
    """The default heads given as pretrained_model_path: same numbers, file named after them."""
    name = VARIANTS['spips'].heads_file()
    checkpoint = REPO / 'spips_pyiqa' / 'archs' / 'pretrained' / name
    assert _run(bapps_root, tmp_path, '--pretrained-model-path', str(checkpoint)) == 0
    assert _read_rows(tmp_path / f'bapps_spips_{name.removesuffix(".pth")}.csv') == results['spips'][0]


@pytest.mark.slow
def test_evaluate_distributed_two_processes_give_the_one_process_table(bapps_root, results, tmp_path):
    """Batches of one item dealt to 2 ranks: rank 0 alone prints and writes the one-process table."""
    options = yaml.safe_load(OPTIONS.read_text())
    for block in options['datasets'].values():
        block['batch_size_per_gpu'] = 1
    option_file = tmp_path / 'options.yml'
    option_file.write_text(yaml.safe_dump(options))
    out = tmp_path / 'two'
    run = torchrun(2, ['-m', 'spips_pyiqa', 'evaluate', '-opt', str(option_file), '--bapps-root', str(bapps_root),
                       '--out', str(out)], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count('| 2afc | average |') == 1 and run.stdout.count(f'wrote {out}') == 1
    rows, expected = _read_rows(out / 'bapps_spips.csv'), results['spips'][0]
    assert rows.keys() == expected.keys()
    for key, row in rows.items():
        assert row['n'] == expected[key]['n']
        for name, value in row.items():
            if name not in ('metric', 'task', 'category', 'n') and value:
                assert float(value) == pytest.approx(float(expected[key][name]), abs=1e-5), (key, name)


def test_checkpoint_for_a_metric_without_weights(bapps_root, tmp_path, capsys):
    checkpoint = REPO / 'spips_pyiqa' / 'archs' / 'pretrained' / 'spips_alex_v0.1.pth'
    extra = ('--metric', 'psnr', '--pretrained-model-path', str(checkpoint))
    assert _run(bapps_root, tmp_path, *extra) == 1  # failure
    assert 'psnr takes no pretrained_model_path' in _error_line(capsys)


def test_checkpoint_reaches_the_metric(bapps_root, tmp_path, capsys):
    """A broken SPIPS checkpoint is refused by SPIPS' strict loader: it was passed to the metric."""
    checkpoint = tmp_path / 'broken.pth'
    checkpoint.write_bytes(b'not a checkpoint')
    assert _run(bapps_root, tmp_path, '--pretrained-model-path', str(checkpoint)) == 1  # failure
    assert 'cannot read SPIPS checkpoint' in _error_line(capsys)


@pytest.mark.parametrize(
    ('edit', 'message'),
    [
        (lambda o: o['datasets']['val_jnd'].update(mode='3afc'), 'mode must be 2afc or jnd'),
        (lambda o: o['datasets']['val_2afc'].update(categories=['faces']), "['faces']"),
        (lambda o: o['datasets']['val_jnd'].pop('batch_size_per_gpu'), 'lacks batch_size_per_gpu'),
        (lambda o: o.update(num_gpu=-1), 'num_gpu'),
    ],
)
def test_bad_options(tmp_path, capsys, edit, message):
    options = yaml.safe_load(OPTIONS.read_text())
    edit(options)
    path = tmp_path / 'options.yml'
    path.write_text(yaml.safe_dump(options))
    assert cli(['-opt', str(path)]) == 1  # failure
    assert message in _error_line(capsys)
