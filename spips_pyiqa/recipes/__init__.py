"""How the shipped heads in ``spips_pyiqa/archs/pretrained/`` are made, with their provenance.

- ``label_free_heads``: LPIPS linear weights, a fixed traditional head and fusion weights by a
  label-free rule (``make heads``).

May import: ``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``.
"""
