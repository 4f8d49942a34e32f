"""How the shipped heads in ``spips_pyiqa/archs/pretrained/`` are made, with their provenance.

- ``label_free_heads``: LPIPS linear weights, a fixed traditional head and fusion weights by a
  label-free rule (``make heads``);
- ``human_heads``: heads learned from LIVE DMOS (live_dev + live_jpeg_dev), chosen and shipped by
  the leaderboard protocol (``make heads``), with ``heads_features`` (pooled map means and their
  keyed cache), ``linear_heads`` (the batched linear training form) and ``recipe_selection``
  (admissibility, the conservative choice within the bootstrap interval, the ship rule).

May import: ``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``.
"""
