"""Registration of SPIPS with pyiqa: metric table, architecture, training model, metric functions.

Three routes lead here, all idempotent:

- ``import spips_pyiqa`` calls :func:`register` (everything, eagerly);
- pyiqa's entry-point groups ``pyiqa.archs`` / ``models`` / ``losses`` / ``metrics`` (declared in
  setup.cfg) call the zero-argument functions below the first time pyiqa queries a registry;
- the ``spips_pyiqa_autoload.pth`` start-up hook adds the metric table entries when pyiqa is
  imported, since ``create_metric`` reads that table before any registry.

Python's module cache makes each ``import`` below run its ``@REGISTRY.register()`` decorators once.

With the architecture comes the file reader of SPIPS metrics: pyiqa's ``InferenceModel`` reads
paths with its own 8-bit reader before the network sees them, so a torch module-registration hook
(torch's public API) waits for an ``InferenceModel`` to receive a SPIPS network as ``net`` and
gives that instance :mod:`spips_pyiqa.data.pyiqa_inputs`'s reader. Other metrics and pyiqa's
classes are untouched.
"""

import torch
from pyiqa.default_model_configs import DEFAULT_CONFIGS

from spips_pyiqa.metric_configs import add_metric_configs

_FILE_READER_HOOK = []  # the handle of the module-registration hook, once installed


def register_archs() -> None:
    """Register the ``SPIPS`` architecture in pyiqa's ``ARCH_REGISTRY`` and its file reader."""
    import spips_pyiqa.archs  # noqa: F401  (registers on import)

    if not _FILE_READER_HOOK:
        _FILE_READER_HOOK.append(torch.nn.modules.module.register_module_module_registration_hook(
            _read_files_of_spips_metrics))


def _read_files_of_spips_metrics(module: torch.nn.Module, name: str, submodule: torch.nn.Module) -> None:
    """Module-registration hook: an ``InferenceModel`` given a SPIPS ``net`` reads files with ``load_image``."""
    if name != 'net':  # called for every submodule anywhere in the process: be quick
        return
    from pyiqa.models.inference_model import InferenceModel

    from spips_pyiqa.archs.spips_arch import SPIPS
    from spips_pyiqa.data.pyiqa_inputs import read_inputs_with_load_image

    if isinstance(submodule, SPIPS) and isinstance(module, InferenceModel):
        read_inputs_with_load_image(module)


def register_training() -> None:
    """Register the SPIPS training models and losses (``MODEL_REGISTRY``, ``LOSS_REGISTRY``)."""
    import spips_pyiqa.losses  # noqa: F401  (registers on import)
    import spips_pyiqa.models  # noqa: F401  (registers on import)


def register_metric_functions() -> None:
    """Register pyiqa's own ``calculate_2afc_score`` for BAPPS validation.

    pyiqa 0.1.16 defines it in ``pyiqa.metrics.other_metrics`` but never imports that module, so
    ``METRIC_REGISTRY.get('calculate_2afc_score')`` raises KeyError without this.
    """
    import pyiqa.metrics.other_metrics  # noqa: F401  (registers on import)


def register() -> None:
    """Make every SPIPS name known to pyiqa (metric table, arch; training parts lazily)."""
    add_metric_configs(DEFAULT_CONFIGS)
    register_archs()
