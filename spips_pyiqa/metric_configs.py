"""The SPIPS entries of pyiqa's metric table (``pyiqa.default_model_configs.DEFAULT_CONFIGS``).

This module is pure data plus one function and imports nothing heavy: the start-up hook in
``spips_pyiqa_autoload.py`` loads it while pyiqa itself is still being imported.

Score range: SPIPS is a convex combination (eq. 12) of non-negative group distances that are each
at most about 1 (flipped normalised maps, LPIPS-like deep distances), so ``0, ~1`` like LPIPS.
"""

from collections import OrderedDict

#: Versions of the shipped heads: label-free (LPIPS heads + rules) and human-trained on live_dev.
LABEL_FREE, HUMAN_TRAINED = '0.1', '0.2'


def _spips_config(**arch_options):
    return {
        'metric_opts': {'type': 'SPIPS', **arch_options},
        'metric_mode': 'FR',
        'lower_better': True,
        'score_range': '0, ~1',
    }


#: The variants (name -> architecture options) and which heads each loads by default:
#: ``'0.2'`` human-trained on live_dev where its cross-validation supports them
#: (``benchmark_results/human_heads_cv.md``, ``spips_pyiqa/recipes/human_heads.py``), else ``'0.1'``.
VARIANTS = {
    'spips': ({'net': 'alex'}, HUMAN_TRAINED),
    'spips-vgg': ({'net': 'vgg'}, HUMAN_TRAINED),
    'spips-no-semantic': ({'net': 'alex', 'groups': ('traditional', 'perceptual')}, HUMAN_TRAINED),
    # cross-validation found no gain for the ablation without traditional maps
    'spips-no-traditional': ({'net': 'alex', 'groups': ('perceptual', 'semantic')}, LABEL_FREE),
}

SPIPS_METRIC_CONFIGS = OrderedDict(
    [(name, _spips_config(**options, heads_version=version)) for name, (options, version) in VARIANTS.items()]
    + [('spips-squeeze', _spips_config(net='squeeze', heads_version=LABEL_FREE))]
    # today's label-free heads under their own names, so numbers made with them stay reproducible
    + [(f'{name}-label-free', _spips_config(**options, heads_version=LABEL_FREE)) for name, (options, _) in VARIANTS.items()]
)


def add_metric_configs(table) -> None:
    """Add the SPIPS entries to pyiqa's metric ``table`` in place, leaving existing names alone."""
    for name, config in SPIPS_METRIC_CONFIGS.items():
        table.setdefault(name, config)
