"""Evaluation of metrics against human judgments, callable from Python (the commands call it too).

- ``bapps``: BAPPS 2AFC / JND evaluation of any pyiqa full-reference metric, per category, under
  torchrun too (``python -m spips_pyiqa evaluate``);
- ``mos``: agreement with opinion scores (MOS/DMOS): scores of image pairs, sign-corrected
  PLCC/SRCC/KRCC overall and per distortion type;
- ``fr_metrics``: which pyiqa metric names are full-reference (the names evaluations accept).

May import: archs, data, metrics, models, losses, utils, recipes.
"""
