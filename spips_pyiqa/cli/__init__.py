"""Commands of ``python -m spips_pyiqa COMMAND`` (top layer), one module each with ``cli(argv) -> int``.

- ``fetch_weights``, ``score``, ``demo``, ``prepare_bapps``, ``prepare_mos``, ``evaluate`` (BAPPS
  evaluation of any pyiqa FR metric): argument parsing and exit codes around library code;
- ``arguments``: what every command shares: its parser, plain-text help, the exit-code convention.

May import: everything below (``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``,
``recipes``, ``evaluation``), never ``benchmark``.
"""
