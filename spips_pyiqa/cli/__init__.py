"""Commands of ``python -m spips_pyiqa COMMAND`` (top layer), one module each with ``cli(argv)``.

- ``fetch_weights``, ``score``, ``demo``, ``prepare_bapps``, ``evaluate`` (BAPPS evaluation of any
  pyiqa FR metric).

May import: everything below (``archs``, ``data``, ``metrics``, ``models``, ``losses``, ``utils``,
``recipes``), never ``benchmark``.
"""
