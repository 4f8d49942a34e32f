"""The SPIPS entries of pyiqa's metric table (``pyiqa.default_model_configs.DEFAULT_CONFIGS``).

This module is pure data plus one function and imports nothing heavy: the start-up hook in
``spips_pyiqa_autoload.py`` loads it while pyiqa itself is still being imported.

Score range: SPIPS is a convex combination (eq. 12) of non-negative group distances that are each
at most about 1 (flipped normalised maps, LPIPS-like deep distances), so ``0, ~1`` like LPIPS.
"""

from collections import OrderedDict


def _spips_config(**arch_options):
    return {
        'metric_opts': {'type': 'SPIPS', **arch_options},
        'metric_mode': 'FR',
        'lower_better': True,
        'score_range': '0, ~1',
    }


SPIPS_METRIC_CONFIGS = OrderedDict(
    {
        'spips': _spips_config(net='alex'),
        'spips-vgg': _spips_config(net='vgg'),
        'spips-squeeze': _spips_config(net='squeeze'),
        'spips-no-semantic': _spips_config(net='alex', groups=('traditional', 'perceptual')),
        'spips-no-traditional': _spips_config(net='alex', groups=('perceptual', 'semantic')),
    }
)


def add_metric_configs(table) -> None:
    """Add the SPIPS entries to pyiqa's metric ``table`` in place, leaving existing names alone."""
    for name, config in SPIPS_METRIC_CONFIGS.items():
        table.setdefault(name, config)
