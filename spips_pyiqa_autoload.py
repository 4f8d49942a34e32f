"""Start-up hook that puts the SPIPS metric names into pyiqa's metric table.

``pyiqa.create_metric`` and ``pyiqa.list_models`` read ``pyiqa.default_model_configs.DEFAULT_CONFIGS``
before any registry (and so any ``pyiqa.*`` entry point) is consulted. For
``pyiqa.create_metric('spips')`` to work in an interpreter that never imports ``spips_pyiqa``, the
``spips_pyiqa_autoload.pth`` file installed next to this module calls :func:`install` at interpreter
start. It adds an import hook that waits for ``pyiqa.default_model_configs`` and, right after that
module runs, adds the SPIPS entries from ``spips_pyiqa/metric_configs.py``.

Cost: no torch, no pyiqa and no ``spips_pyiqa`` import at start-up; the metric table file is read
only when pyiqa itself is imported. The SPIPS architecture and training model are registered
lazily through the ``pyiqa.archs`` / ``pyiqa.models`` / ``pyiqa.metrics`` entry points.
"""

import importlib.abc
import importlib.util
import sys
from pathlib import Path

WATCHED_MODULE = 'pyiqa.default_model_configs'


def _load_metric_configs_module():
    """Load ``spips_pyiqa/metric_configs.py`` without running ``spips_pyiqa/__init__.py``."""
    package = importlib.util.find_spec('spips_pyiqa')
    path = Path(package.submodule_search_locations[0]) / 'metric_configs.py'
    spec = importlib.util.spec_from_file_location('_spips_pyiqa_metric_configs', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _AfterExecLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _load_metric_configs_module().add_metric_configs(module.DEFAULT_CONFIGS)


class _PyiqaConfigsFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != WATCHED_MODULE:
            return None
        sys.meta_path.remove(self)  # one shot; also avoids finding ourselves below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _AfterExecLoader(spec.loader)
        return spec


def install():
    """Add the one-shot import hook (idempotent; a no-op when pyiqa is already imported)."""
    if WATCHED_MODULE in sys.modules:
        _load_metric_configs_module().add_metric_configs(sys.modules[WATCHED_MODULE].DEFAULT_CONFIGS)
        return
    if not any(isinstance(f, _PyiqaConfigsFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PyiqaConfigsFinder())
