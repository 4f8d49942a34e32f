"""Build hook: ship ``spips_pyiqa_autoload.pth`` at the root of site-packages.

The ``.pth`` file makes ``pyiqa.create_metric('spips')`` work without ``import spips_pyiqa``
(see ``spips_pyiqa_autoload.py``). setuptools has no declarative way to install a file at the
site-packages root, hence this small ``build_py`` override; everything else is in setup.cfg.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_FILE = 'spips_pyiqa_autoload.pth'


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        shutil.copy(Path(__file__).parent / PTH_FILE, Path(self.build_lib) / PTH_FILE)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [str(Path(self.build_lib) / PTH_FILE)]


setup(cmdclass={'build_py': BuildPyWithPth})
