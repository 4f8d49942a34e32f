"""Commands of ``python -m spips_pyiqa COMMAND`` (top layer), one module each with ``cli(argv)``.

- ``fetch_weights``, ``score``, ``demo``, ``prepare_bapps``, ``prepare_mos``, ``evaluate`` (BAPPS
  evaluation of any pyiqa FR metric);
- ``arguments``: argument parsing that returns argparse's exit code instead of raising.

May import: everything below (``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``, ``evaluation``,
``recipes``), never ``benchmark``.
"""
