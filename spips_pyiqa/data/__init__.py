"""Images and data sets (like ``pyiqa/data``).

- ``image_io``: reading image files strictly (16-bit, EXIF) and writing heat maps (colour bar, fixed range);
- ``pyiqa_inputs``: files handed to ``create_metric('spips')`` read with ``load_image``;
- ``distortions``: scikit-image photographs and distortions of known severity;
- ``bapps_prepare``: pyiqa's meta-info CSV + split file for a BAPPS folder;
- ``pyiqa_datasets``: pyiqa's full-reference data set options with paths under a data root;
- ``mos_prepare``: pyiqa meta-info and scene-wise splits for MOS data (``prepare-mos``);
- ``live_dev``: where the shared LIVE subset is and how to read it;
- ``pairing``: target and reference files of two folders paired by name, stem or target suffix;
- ``pair_loader``: (target, reference) files decoded in chunks by a DataLoader, same-size groups.

May import: ``spips_pyiqa.utils`` only.
"""
