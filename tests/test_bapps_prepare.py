"""``prepare-bapps`` and the synthetic BAPPS fixture, checked through pyiqa's real ``BAPPSDataset``.

A tiny BAPPS-layout folder (spips_pyiqa.benchmark.synthetic_bapps) is written to a temporary folder, the command
writes pyiqa's meta-info CSV + split pickle, and pyiqa 0.1.16's ``BAPPSDataset`` (built by
``pyiqa.data.build_dataset`` from the options a YAML would give) must return every triplet with the
right images and judgment. Broken layouts must give one-line errors with exit code 2.
"""

import csv
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pyiqa.data import build_dataset

from spips_pyiqa.cli.prepare_bapps import cli
from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
from spips_pyiqa.data.bapps_prepare import (
    JND_CATEGORIES,
    META_INFO_NAME,
    SPLIT_FILE_NAME,
    TRAIN_2AFC_CATEGORIES,
    VAL_2AFC_CATEGORIES,
    dataset_options,
    default_output_dir,
)
from spips_pyiqa.metrics.bapps_scores import jnd_map, two_afc_mean

REPO = Path(__file__).resolve().parents[1]
N_TRAIN, N_VAL, N_JND, SIZE = 2, 3, 4, 32
COUNTS = {
    '2afc train': N_TRAIN * len(TRAIN_2AFC_CATEGORIES),
    '2afc val': N_VAL * len(VAL_2AFC_CATEGORIES),
    'jnd val': N_JND * len(JND_CATEGORIES),
}
PYIQA_HEADER = ['ref_img_path', 'p0_img_path', 'p1_img_path', 'judge/same', 'split']


@pytest.fixture(scope='module')
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    """(BAPPS root, meta-info folder) after ``cli([root, '--out', out])``."""
    root = make_synthetic_bapps(tmp_path_factory.mktemp('bapps'), N_TRAIN, N_VAL, N_JND, SIZE, seed=0)
    out = tmp_path_factory.mktemp('meta')
    assert cli([str(root), '--out', str(out)]) == 0
    return root, out


def _read_csv(path: Path) -> list[list[str]]:
    with path.open(newline='') as handle:
        return list(csv.reader(handle))


def _judgment_file(root: Path, p0_path: str) -> Path:
    """The judge/same .npy file BAPPS pairs with a p0 image path."""
    category_dir, stem = (root / p0_path).parents[1], Path(p0_path).stem
    folder = 'same' if p0_path.startswith('jnd/') else 'judge'
    return category_dir / folder / f'{stem}.npy'


def _as_tensor(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert('RGB'))).permute(2, 0, 1) / 255.0


# --- the written files ----------------------------------------------------------------------------


def test_csv_has_pyiqa_columns_and_one_row_per_item(prepared):
    root, out = prepared
    header, *rows = _read_csv(out / META_INFO_NAME)
    assert header == PYIQA_HEADER
    assert len(rows) == sum(COUNTS.values())
    for ref, p0, p1, judgment, split in rows:
        assert not Path(p0).is_absolute(), 'paths must be relative to dataroot_target'
        assert p1 == p0.replace('/p0/', '/p1/')
        assert ref == ('jnd' if p0.startswith('jnd/') else p0.replace('/p0/', '/ref/'))
        assert float(judgment) == np.load(_judgment_file(root, p0)).item()
        assert split == ('0' if p0.startswith('2afc/train/') else '1')


def test_rows_follow_pyiqa_sorted_order(prepared):
    _, out = prepared
    _, *rows = _read_csv(out / META_INFO_NAME)
    two_afc = [row[0] for row in rows if row[0] != 'jnd']
    jnd = [row[1] for row in rows if row[0] == 'jnd']
    assert two_afc == sorted(two_afc) and jnd == sorted(jnd)
    assert rows.index(next(row for row in rows if row[0] == 'jnd')) == len(two_afc)


def test_split_file_indexes_train_and_val_rows(prepared):
    _, out = prepared
    _, *rows = _read_csv(out / META_INFO_NAME)
    splits = pickle.loads((out / SPLIT_FILE_NAME).read_bytes())
    assert set(splits) == {1} and set(splits[1]) == {'train', 'val', 'test'}
    assert splits[1]['train'] == [i for i, row in enumerate(rows) if row[4] == '0']
    assert splits[1]['val'] == [i for i, row in enumerate(rows) if row[4] == '1']
    assert splits[1]['test'] == []


def test_module_command_writes_to_the_default_folder(tmp_path):
    root = make_synthetic_bapps(tmp_path / 'bapps', 1, 1, 1, SIZE)
    paths = [os.environ.get('PYTHONPATH', ''), str(REPO)]
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join(path for path in paths if path)}
    result = subprocess.run(
        [sys.executable, '-m', 'spips_pyiqa', 'prepare-bapps', str(root)],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    csv_path = default_output_dir(root) / META_INFO_NAME
    assert csv_path == root / 'meta_info' / META_INFO_NAME
    assert (
        str(csv_path) in result.stdout and str(csv_path.with_name(SPLIT_FILE_NAME)) in result.stdout
    )
    assert len(_read_csv(csv_path)) == 1 + 3 + 6 + 2


def test_val_only_download_is_accepted(tmp_path):
    root = make_synthetic_bapps(tmp_path / 'bapps', 1, 1, 1, SIZE)
    shutil.rmtree(root / '2afc' / 'train')
    assert cli([str(root)]) == 0
    splits = pickle.loads((default_output_dir(root) / SPLIT_FILE_NAME).read_bytes())
    assert splits[1]['train'] == [] and len(splits[1]['val']) == 6 + 2


def test_usage_errors_return_exit_codes_without_raising(capsys):
    assert cli([]) == 2
    assert cli(['--help']) == 0
    assert 'BAPPS_ROOT/meta_info' in capsys.readouterr().out


# --- loading through pyiqa's BAPPSDataset ---------------------------------------------------------


@pytest.mark.parametrize('phase', ['train', 'val'])
def test_pyiqa_loads_2afc_triplets_with_their_judgments(prepared, phase):
    root, out = prepared
    dataset = build_dataset(dataset_options(root, phase, '2afc', meta_dir=out))
    assert len(dataset) == COUNTS[f'2afc {phase}']
    for item in dataset:
        ref, p0, p1 = Path(item['img_path']), Path(item['distA_path']), Path(item['distB_path'])
        assert ref.relative_to(root).parts[:2] == ('2afc', phase)
        assert (p0.parent.name, p1.parent.name, ref.parent.name) == ('p0', 'p1', 'ref')
        assert p0.name == p1.name == ref.name and p0.parents[1] == p1.parents[1] == ref.parents[1]
        assert item['mos_label'].item() == pytest.approx(
            np.load(_judgment_file(root, str(p0.relative_to(root)))).item()
        )
        for key, path in (('ref_img', ref), ('distA_img', p0), ('distB_img', p1)):
            assert item[key].shape == (3, SIZE, SIZE)
            torch.testing.assert_close(item[key], _as_tensor(path))


def test_pyiqa_loads_one_category_through_val_types(prepared):
    root, out = prepared
    dataset = build_dataset(dataset_options(root, 'val', meta_dir=out, val_types=['/superres/']))
    assert len(dataset) == N_VAL
    assert all('/superres/p0/' in item['distA_path'] for item in dataset)


def test_pyiqa_jnd_mode_gives_pairs_without_reference(prepared):
    root, out = prepared
    dataset = build_dataset(dataset_options(root, 'val', 'jnd', meta_dir=out))
    assert len(dataset) == COUNTS['jnd val']
    for item in dataset:
        assert 'ref_img' not in item
        p0 = Path(item['distA_path']).relative_to(root).as_posix()
        assert item['mos_label'].item() == pytest.approx(np.load(_judgment_file(root, p0)).item())
    assert len(build_dataset(dataset_options(root, 'train', 'jnd', meta_dir=out))) == 0


def test_pyiqa_bapps_dataset_needs_the_split_file(prepared):
    """pyiqa 0.1.16 quirk: without ``split_file``, BAPPSDataset fails (it never sets meta_info)."""
    root, out = prepared
    options = dataset_options(root, 'val', meta_dir=out)
    del options['split_file']
    with pytest.raises(AttributeError, match='meta_info'):
        build_dataset(options)


# --- broken layouts -------------------------------------------------------------------------------


def _remove(relative: str) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        target = root / relative
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        return target

    return mutate


def _write(relative: str, content: bytes) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
        return root / relative

    return mutate


def _save_npy(relative: str, value: np.ndarray) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        np.save(root / relative, value)
        return root / relative

    return mutate


def _make_dir(relative: str) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        (root / relative).mkdir(parents=True)
        return root / relative

    return mutate


def _empty_category(relative: str) -> Callable[[Path], Path]:
    def mutate(root: Path) -> Path:
        for file in (root / relative).glob('*/*'):
            file.unlink()
        return root / relative

    return mutate


def _not_bapps(root: Path) -> Path:
    shutil.rmtree(root / '2afc')
    shutil.rmtree(root / 'jnd')
    (root / 'photo.png').write_bytes(b'')
    return root


def _nonexistent(root: Path) -> Path:
    shutil.rmtree(root)
    return root


BROKEN = {
    'nonexistent-root': (_nonexistent, 'not a folder'),
    'not-bapps': (_not_bapps, 'not a BAPPS folder'),
    'missing-val-category': (_remove('2afc/val/color'), 'missing BAPPS subfolder'),
    'missing-train-category': (_remove('2afc/train/mix'), 'missing BAPPS subfolder'),
    'missing-judge-folder': (_remove('2afc/val/cnn/judge'), 'missing BAPPS subfolder'),
    'missing-jnd': (_remove('jnd/val'), 'missing BAPPS subfolder'),
    'p0-without-p1': (_remove('2afc/val/deblur/p1/000001.png'), 'no partner'),
    'p0-without-ref': (_remove('2afc/train/cnn/ref/000000.png'), 'no partner'),
    'p0-without-judge': (_remove('2afc/val/frameinterp/judge/000000.npy'), 'no partner'),
    'jnd-p0-without-same': (_remove('jnd/val/cnn/same/000001.npy'), 'no partner'),
    'p1-without-p0': (_write('2afc/val/cnn/p1/000099.png', b''), 'has no p0 image'),
    'empty-category': (_empty_category('2afc/val/superres'), 'empty BAPPS category'),
    'unknown-category': (_make_dir('2afc/val/blurry'), 'unexpected folder'),
    'judge-out-of-range': (
        _save_npy('2afc/val/color/judge/000000.npy', np.array([3.0])),
        'one number',
    ),
    'judge-two-values': (_save_npy('2afc/val/color/judge/000000.npy', np.zeros(2)), 'one number'),
    'judge-not-npy': (_write('2afc/val/color/judge/000000.npy', b'text'), 'unreadable'),
}


@pytest.mark.parametrize('case', BROKEN, ids=list(BROKEN))
def test_broken_layout_is_a_one_line_error(tmp_path, capsys, case):
    mutate, message = BROKEN[case]
    root = make_synthetic_bapps(tmp_path / 'bapps', 2, 2, 2, 8)
    culprit = mutate(root)
    out = tmp_path / 'meta'
    assert cli([str(root), '--out', str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert captured.err.startswith('error: ') and captured.err.count('\n') == 1, captured.err
    assert message in captured.err and str(culprit) in captured.err
    assert not out.exists()


# --- the synthetic fixture ------------------------------------------------------------------------


def _digest(root: Path) -> dict[str, str]:
    files = sorted(path for path in root.rglob('*') if path.is_file())
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in files
    }


def test_fixture_is_deterministic_for_a_seed(tmp_path):
    first = _digest(make_synthetic_bapps(tmp_path / 'a', 1, 2, 2, SIZE, seed=3))
    assert first == _digest(make_synthetic_bapps(tmp_path / 'b', 1, 2, 2, SIZE, seed=3))
    assert first != _digest(make_synthetic_bapps(tmp_path / 'c', 1, 2, 2, SIZE, seed=4))
    assert len(first) == 3 * 4 * 1 + 6 * 4 * 2 + 2 * 3 * 2


def test_fixture_judgments_are_quantised_like_bapps(prepared):
    root, _ = prepared
    for pattern, raters in (
        ('2afc/train/*/judge', 2),
        ('2afc/val/*/judge', 5),
        ('jnd/val/*/same', 3),
    ):
        values = np.array([np.load(path) for path in root.glob(f'{pattern}/*.npy')])
        assert values.dtype == np.float32 and values.shape[1:] == (1,)
        np.testing.assert_allclose(values * raters, np.round(values * raters), atol=1e-5)
        assert values.min() >= 0 and values.max() <= 1


def _mse(a: Path, b: Path) -> float:
    return float(((_as_tensor(a) - _as_tensor(b)) ** 2).mean())


def test_fixture_people_prefer_the_less_distorted_image(tmp_path):
    root = make_synthetic_bapps(tmp_path, n_train=1, n_val=6, n_jnd=8, size=64, seed=0)
    d0, d1, h = [], [], []
    for judge in sorted(root.glob('2afc/val/*/judge/*.npy')):
        folder, name = judge.parents[1], judge.stem + '.png'
        d0.append(_mse(folder / 'p0' / name, folder / 'ref' / name))
        d1.append(_mse(folder / 'p1' / name, folder / 'ref' / name))
        h.append(np.load(judge).item())
    assert two_afc_mean(d0, d1, h) > 0.8  # MSE follows severity within a distortion kind
    pairs = sorted(root.glob('jnd/val/*/same/*.npy'))
    d = [
        _mse(p.parents[1] / 'p0' / (p.stem + '.png'), p.parents[1] / 'p1' / (p.stem + '.png'))
        for p in pairs
    ]
    assert jnd_map(d, [np.load(p).item() for p in pairs]) > 0.6
