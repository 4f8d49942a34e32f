"""``python -m spips_pyiqa demo`` on an empty torch cache: it scores (SPIPS next to pyiqa's LPIPS
and DISTS) and leaves no torchvision-named file in the user's hub."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_scores_offline_without_files_under_torchvisions_names(tmp_path):
    torch_home = tmp_path / 'torch_home'
    env = {**os.environ, 'TORCH_HOME': str(torch_home), 'PYTHONPATH': str(REPO)}
    run = subprocess.run([sys.executable, '-m', 'spips_pyiqa', 'demo', '--out', str(tmp_path / 'demo')],
                         capture_output=True, text=True, env=env, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    header, *rows = [line.split() for line in run.stdout.splitlines() if line.startswith(('pair', 'target_'))]
    assert header == ['pair', 'spips', 'lpips', 'dists'] and len(rows) == 2
    assert all(0 < float(value) < 1 for row in rows for value in row[1:])
    assert not list((torch_home / 'hub' / 'checkpoints').glob('*.pth')), 'demo wrote into torchvision\'s cache'
