"""``pip install -e .`` gives a working ``pyiqa.create_metric('spips')`` (the start-up hook ships too).

The editable install goes into a throw-away virtualenv that sees this interpreter's packages
through a folder of links (all but spips_pyiqa's own files, so the worktree is what gets imported).
"""

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FIRST_SCORE = '''
import sys, pyiqa, torch
assert 'spips_pyiqa' not in sys.modules, 'pyiqa import should not import the plugin'
metric = pyiqa.create_metric('spips', device='cpu')
import spips_pyiqa
print(spips_pyiqa.__file__)
print(float(metric(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))))
'''


def _venv_seeing_our_packages(root: Path) -> Path:
    """A virtualenv without pip whose site-packages links to ours, minus any spips_pyiqa install."""
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(root / 'venv')], check=True)
    python = root / 'venv' / 'bin' / 'python'
    site = Path(subprocess.run([str(python), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                               check=True, capture_output=True, text=True).stdout.strip())
    shim = root / 'shim'
    shim.mkdir()
    for entry in Path(sysconfig.get_paths()['purelib']).iterdir():
        if not entry.name.startswith(('spips_pyiqa', '__editable__')) and entry.suffix != '.pth':
            (shim / entry.name).symlink_to(entry)
    (site / 'zz_our_packages.pth').write_text(f'{shim}\n')  # after the editable install's .pth files
    return python


@pytest.mark.slow
def test_editable_install_registers_spips(tmp_path):
    python = _venv_seeing_our_packages(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != 'PYTHONPATH'}
    install = subprocess.run(
        [sys.executable, '-m', 'pip', '--python', str(python), 'install', '--quiet', '--no-deps',
         '--no-build-isolation', '--no-index', '-e', str(REPO)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    run = subprocess.run([str(python), '-c', FIRST_SCORE], cwd=tmp_path, capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    module_file, score = run.stdout.split()[-2:]
    assert Path(module_file) == REPO / 'spips_pyiqa' / '__init__.py'
    assert 0 < float(score) < float('inf')
