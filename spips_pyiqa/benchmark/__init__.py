"""``python -m spips_pyiqa benchmark``: every table and figure of ``benchmark_results/`` (top layer).

- ``run``: the command; ``agreement``: correlation with human judgments (LIVE, BAPPS);
  ``speed``: time and memory vs pyiqa's ``lpips``; ``figures``: quality maps and scatters;
  ``leaderboard``: rows in pyiqa's ``FR_benchmark_results.csv`` format for pyiqa's data sets;
  ``scale``: training and scoring throughput, 1 vs 2 processes under torchrun;
  ``cache``: per-metric score cache; ``tables``: CSV / Markdown tables.

May import: everything, ``cli`` included (BAPPS evaluation).
"""
