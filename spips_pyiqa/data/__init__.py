"""Images and data sets (like ``pyiqa/data``).

- ``image_io``: reading image files strictly (16-bit, EXIF) and writing heat maps;
- ``distortions``: scikit-image photographs and distortions of known severity;
- ``bapps_prepare``: pyiqa's meta-info CSV + split file for a BAPPS folder;
- ``bapps_fixture``: a tiny synthetic BAPPS-layout folder for tests;
- ``pair_loader``: (target, reference) files decoded in chunks by a DataLoader, same-size groups.

May import: ``spips_pyiqa.utils`` only.
"""
