"""Which pyiqa metrics ``score`` can compute: the full-reference names of pyiqa's own metric table.

Names come from ``pyiqa.list_models(metric_mode='FR')`` (the SPIPS variants included, registered by
importing this package), directions from the table's ``lower_better``. Anything else (a typo, a
no-reference metric such as ``niqe``) is refused with the list of full-reference names.
"""

import difflib
from collections.abc import Iterable

import pyiqa
from pyiqa.default_model_configs import DEFAULT_CONFIGS

from spips_pyiqa.metric_configs import SPIPS_METRIC_CONFIGS

__all__ = ['UnknownMetricError', 'check_fr_metrics', 'fr_metric_names', 'gives_maps', 'lower_better']


class UnknownMetricError(ValueError):
    """A metric name that is not a full-reference metric of pyiqa's table."""


def fr_metric_names() -> list[str]:
    """Every full-reference metric pyiqa knows, sorted."""
    return pyiqa.list_models(metric_mode='FR')


def lower_better(name: str) -> bool:
    """Whether lower values of ``name`` mean better quality (pyiqa's ``lower_better``)."""
    return bool(DEFAULT_CONFIGS[name].get('lower_better', False))


def gives_maps(name: str) -> bool:
    """Whether ``name`` returns a quality map (``return_map=True``): the SPIPS variants."""
    return name in SPIPS_METRIC_CONFIGS


def check_fr_metrics(names: Iterable[str]) -> list[str]:
    """``names`` without repeats, in order; refuses an empty list and names that are not FR metrics."""
    checked = list(dict.fromkeys(name.strip() for name in names))
    known = fr_metric_names()
    if not checked or '' in checked:
        raise UnknownMetricError(f'name at least one metric, comma-separated; full-reference metrics: {", ".join(known)}')
    for name in checked:
        if name in known:
            continue
        if name in DEFAULT_CONFIGS:
            why = f'{name} is a no-reference metric (it scores an image alone)'
        else:
            close = difflib.get_close_matches(name, known, n=3)
            why = f'unknown metric {name!r}' + (f' (did you mean {", ".join(close)}?)' if close else '')
        raise UnknownMetricError(f'{why}; full-reference metrics: {", ".join(known)}')
    return checked
