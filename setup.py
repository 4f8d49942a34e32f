"""Build hook: ship ``spips_pyiqa_autoload.pth`` at the root of site-packages, editable installs too.

The ``.pth`` file makes ``pyiqa.create_metric('spips')`` work without ``import spips_pyiqa``
(see ``spips_pyiqa_autoload.py``). setuptools has no declarative way to install a file at the
site-packages root, hence this small ``build_py`` override; everything else is in setup.cfg.

A regular build copies the file into ``build_lib``, which becomes the wheel's root. An editable
build (``pip install -e .``, setuptools >= 64) ignores ``build_lib`` and packs the wheel from the
``install`` command's ``install_lib`` folder (setuptools' ``editable_wheel`` points it at the
unpacked wheel), so there the file is copied into that folder.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_FILE = 'spips_pyiqa_autoload.pth'


class BuildPyWithPth(build_py):
    def _pth_destination(self) -> Path:
        if getattr(self, 'editable_mode', False):
            return Path(self.get_finalized_command('install').install_lib) / PTH_FILE
        return Path(self.build_lib) / PTH_FILE

    def run(self):
        super().run()
        destination = self._pth_destination()
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(__file__).parent / PTH_FILE, destination)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(self._pth_destination())]


setup(cmdclass={'build_py': BuildPyWithPth})
