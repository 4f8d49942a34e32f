"""The wheel holds the package, its shipped heads and the start-up hook, nothing else: no tests, no
test fixtures, no benchmark results (built from a copy of this checkout with setuptools' own PEP 517
backend, as ``pip install .`` builds it)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: What a checkout holds besides sources: never copied (build outputs, caches, the virtualenv).
NOT_COPIED = shutil.ignore_patterns('.git', '.venv', '__pycache__', '*.egg-info', 'build', 'dist', '.pytest_cache',
                                    'experiments', 'results', 'datasets', 'tb_logger', 'cache', 'mutants')


@pytest.fixture(scope='module')
def wheel_names(tmp_path_factory) -> set[str]:
    source, out = tmp_path_factory.mktemp('source') / 'repo', tmp_path_factory.mktemp('wheel')
    shutil.copytree(REPO, source, ignore=NOT_COPIED)
    build = subprocess.run([sys.executable, '-c', f'from setuptools import build_meta; build_meta.build_wheel({str(out)!r})'],
                           cwd=source, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = out.glob('*.whl')
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


@pytest.mark.slow
def test_wheel_holds_the_package_its_heads_and_nothing_else(wheel_names):
    package = {p.relative_to(REPO).as_posix() for p in (REPO / 'spips_pyiqa').rglob('*.py')}
    heads = {p.relative_to(REPO).as_posix() for p in (REPO / 'spips_pyiqa' / 'archs' / 'pretrained').glob('*.pth')}
    hook = {'spips_pyiqa_autoload.py', 'spips_pyiqa_autoload.pth'}
    assert heads and package <= wheel_names and heads <= wheel_names and hook <= wheel_names
    metadata = {n for n in wheel_names if n.split('/')[0].endswith('.dist-info')}
    extra = sorted(wheel_names - package - heads - hook - metadata)
    assert not extra, f'the wheel holds more than the package: {extra}'
    assert not [n for n in wheel_names if 'fixture' in n or n.startswith(('tests/', 'benchmark_results/'))]
