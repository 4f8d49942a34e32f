"""Evaluating metrics on image files and against human judgments, usable from Python (the commands
only parse arguments).

- ``fr_metrics``: pyiqa's full-reference metric names (its own table), their direction; others refused;
- ``scores_file``: the wide scores CSV: one column per metric, what each row was computed from;
- ``output_guard``: outputs that would overwrite the inputs, or land among them, are refused;
- ``folder_scoring``: folders (or two files) scored with several metrics: each pair decoded once,
  same-size pairs batched per metric, sharded under torchrun, resumable by content;
- ``quality_maps``: SPIPS maps as heat-map PNGs (colour bar, fixed range) and raw ``.npy``;
- ``method_comparison``: several methods against one reference folder: the methods x metrics table
  with bootstrap intervals, the rank agreement between metrics, a figure;
- ``bapps``: BAPPS 2AFC / JND evaluation of any pyiqa full-reference metric, per category, under
  torchrun too (``python -m spips_pyiqa evaluate``);
- ``mos``: agreement with opinion scores (MOS/DMOS): scores of image pairs, sign-corrected
  PLCC/SRCC/KRCC overall and per distortion type.

May import: ``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``, ``recipes``.
"""
