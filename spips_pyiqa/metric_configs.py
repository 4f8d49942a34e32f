"""The one table of SPIPS variants, and the pyiqa metric entries derived from it.

Everything that names a variant, a heads version or a default reads this module: the ``SPIPS``
architecture (which heads it loads when none are named), the recipes that make heads, the benchmark,
the golden values and the README's variants table. Adding a variant is one entry in
:data:`VARIANTS`; the shipped heads file it needs is :meth:`Variant.heads_file`.

This module is pure data and imports nothing heavy: the start-up hook in ``spips_pyiqa_autoload.py``
loads it while pyiqa itself is still being imported.

Score range: SPIPS is a convex combination (eq. 12) of non-negative group distances that are each
at most about 1 (flipped normalised maps, LPIPS-like deep distances), so ``0, ~1`` like LPIPS.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

#: The three distance groups in fusion order (eqs. 7-12).
GROUPS = ('traditional', 'perceptual', 'semantic')

#: Heads versions. ``LABEL_FREE``: LPIPS's deep heads + fixed rules, no human score
#: (:mod:`spips_pyiqa.recipes.label_free_heads`); ``HUMAN_TRAINED``: the current human-trained heads
#: (live_dev + live_jpeg_dev, one-standard-error selection over the whole prior range, non-inferiority
#: ship rule; :mod:`spips_pyiqa.recipes.human_heads` writes them for the variants its ship rule
#: accepts). Earlier human-trained heads stay loadable by name (``heads_version='0.3'``) so numbers
#: made with them stay reproducible; no name defaults to them: ``HUMAN_TRAINED_V03`` (same data,
#: the most conservative recipe within a 95% interval, ship rule asking for a gain beyond the noise
#: in both statistics) and ``HUMAN_TRAINED_V02`` (live_dev only, chosen by mean within-scene SRCC;
#: they bend against DMOS).
LABEL_FREE = '0.1'
HUMAN_TRAINED_V02 = '0.2'
HUMAN_TRAINED_V03 = '0.3'
HUMAN_TRAINED = '0.4'
HEADS_VERSIONS = tuple(dict.fromkeys((LABEL_FREE, HUMAN_TRAINED_V02, HUMAN_TRAINED_V03, HUMAN_TRAINED)))

#: Name of the default metric (``SPIPS()`` with no arguments is this variant).
DEFAULT_VARIANT = 'spips'
#: Suffix of the names that load a variant's label-free heads whatever its default is.
LABEL_FREE_SUFFIX = '-label-free'


@dataclass(frozen=True)
class Variant:
    """One registered SPIPS variant.

    Attributes:
        net: backbone, ``'alex'``, ``'vgg'`` or ``'squeeze'``.
        groups: the fused groups in fusion order; two of them are the paper's ablations.
        heads: the heads version its metric name loads by default.
        human_trained: whether :mod:`spips_pyiqa.recipes.human_heads` cross-validates heads for it
            (and so whether a ``<name>-label-free`` twin is registered).
    """

    net: str
    groups: Tuple[str, ...] = GROUPS
    heads: str = LABEL_FREE
    human_trained: bool = True

    def heads_file(self, version: Optional[str] = None) -> str:
        """File name of its shipped heads of ``version`` (default: :attr:`heads`)."""
        return heads_file_name(self.net, self.groups, self.heads if version is None else version)


#: name -> variant. ``heads`` follows the ship rule of :mod:`spips_pyiqa.recipes.human_heads`
#: (``benchmark_results/human_heads_cv.md``): human-trained only where cross-validation supports it.
VARIANTS = OrderedDict(
    [
        ('spips', Variant('alex', heads=HUMAN_TRAINED_V03)),
        ('spips-vgg', Variant('vgg', heads=HUMAN_TRAINED)),
        ('spips-no-semantic', Variant('alex', ('traditional', 'perceptual'), heads=LABEL_FREE)),
        ('spips-no-traditional', Variant('alex', ('perceptual', 'semantic'), heads=HUMAN_TRAINED)),
        ('spips-squeeze', Variant('squeeze', human_trained=False)),
    ]
)


def heads_file_name(net: str, groups: Sequence[str], version: str) -> str:
    """``spips_<net>[_no-<group>...]_v<version>.pth``, e.g. ``spips_alex_no-semantic_v0.1.pth``."""
    suffix = ''.join(f'_no-{g}' for g in GROUPS if g not in groups)
    return f'spips_{net}{suffix}_v{version}.pth'


def variant_named(net: str, groups: Sequence[str]) -> Optional[str]:
    """The registered variant with backbone ``net`` and ``groups`` (any order), or ``None``."""
    wanted = set(groups)
    return next((n for n, v in VARIANTS.items() if v.net == net and set(v.groups) == wanted), None)


def default_heads_version(net: str, groups: Sequence[str]) -> str:
    """Heads version ``SPIPS(net, groups)`` loads: its variant's default, label-free otherwise."""
    name = variant_named(net, groups)
    return VARIANTS[name].heads if name is not None else LABEL_FREE


def _spips_config(variant: Variant, heads: str):
    options = {'net': variant.net, 'heads_version': heads}
    if variant.groups != GROUPS:
        options['groups'] = variant.groups
    return {
        'metric_opts': {'type': 'SPIPS', **options},
        'metric_mode': 'FR',
        'lower_better': True,
        'score_range': '0, ~1',
    }


#: Every registered metric name -> pyiqa config: each variant with its default heads, then the
#: ``-label-free`` twins (numbers made with the label-free heads stay reproducible by name).
SPIPS_METRIC_CONFIGS = OrderedDict(
    [(name, _spips_config(v, v.heads)) for name, v in VARIANTS.items()]
    + [(name + LABEL_FREE_SUFFIX, _spips_config(v, LABEL_FREE)) for name, v in VARIANTS.items() if v.human_trained]
)


def add_metric_configs(table) -> None:
    """Add the SPIPS entries to pyiqa's metric ``table`` in place, leaving existing names alone."""
    for name, config in SPIPS_METRIC_CONFIGS.items():
        table.setdefault(name, config)
