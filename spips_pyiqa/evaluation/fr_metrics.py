"""Which pyiqa metrics are full-reference: the names every evaluation (and command) accepts.

A metric is full-reference when pyiqa's table lists it with ``metric_mode: FR``
(``pyiqa.list_models(metric_mode='FR')``; the SPIPS variants are there once the plugin is
registered).
"""

from collections.abc import Iterable

__all__ = ['UnknownMetricError', 'check_full_reference']


class UnknownMetricError(ValueError):
    """A metric name pyiqa does not know, or a no-reference one; the message lists the FR names."""


def check_full_reference(names: Iterable[str]) -> list[str]:
    """``names`` as a list, if every one is a full-reference pyiqa metric.

    Raises:
        UnknownMetricError: naming the first unknown or no-reference name, with pyiqa's FR names.
    """
    import pyiqa  # the SPIPS names are in its table: importing spips_pyiqa registered them

    names = list(names)
    full_reference = pyiqa.list_models(metric_mode='FR')
    for name in names:
        if name not in full_reference:
            kind = 'not a full-reference metric' if name in pyiqa.list_models() else 'unknown'
            raise UnknownMetricError(f'{kind} pyiqa metric {name!r}; FR metrics: {", ".join(full_reference)}')
    return names
