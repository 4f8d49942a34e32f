"""Scoring functions of a metric against human judgments (like ``pyiqa/metrics``).

- ``correlation``: SRCC / PLCC (raw and after the VQEG logistic fit) / KRCC and their intervals,
  the one implementation that BAPPS, LIVE and every table use;
- ``bapps_scores``: BAPPS 2AFC agreement, JND mAP and per-category scores.

May import: nothing from ``spips_pyiqa`` outside this folder (numpy / scipy, and pyiqa's own metric
functions).
"""
