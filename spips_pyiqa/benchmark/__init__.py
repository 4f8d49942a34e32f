"""``python -m spips_pyiqa benchmark``: every table and figure of ``benchmark_results/`` (top layer).

- ``run``: the command; ``agreement``: correlation with human judgments (LIVE, BAPPS);
  ``speed``: time and memory vs pyiqa's ``lpips``; ``figures``: quality maps, scatters, recovery figures;
  ``leaderboard``: rows in pyiqa's ``FR_benchmark_results.csv`` format for pyiqa's data sets;
  ``human_heads_cv``: cross-validation tables of the human-trained heads; ``numerics``: memory and
  perturbation checks; ``scale``: training and scoring throughput, 1 vs 2 processes under torchrun;
  ``synthetic_bapps``: a BAPPS-layout set with simulated raters, to time training at scale;
  ``cache``: per-metric score cache; ``tables``: CSV / Markdown tables; ``objective``: the
  reference-recovery test (each metric minimised over the pixels of distorted photographs, Ding et al.
  IJCV 2021) and ``objective_report``: its tables.

May import: everything: archs, data, metrics, models, losses, utils, recipes, evaluation, cli (its
argument helpers).
"""
