"""Refusing outputs that would overwrite the images being scored, or land among them.

A scores file, a map file or folder, or a results folder is refused when it *is* one of the input
files or folders, or lies inside an input folder (where a rerun would also pick up the outputs as
images). Paths are compared after resolving symbolic links and ``..``; the check runs before
anything is written.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = ['OutputOverInputError', 'refuse_outputs_over_inputs']


class OutputOverInputError(ValueError):
    """An output path that is an input file or lies inside an input folder."""


def refuse_outputs_over_inputs(outputs: Mapping[str, Path | None], inputs: Mapping[str, Path],
                               input_files: Iterable[Path] = ()) -> None:
    """Raise :class:`OutputOverInputError` naming both paths for the first output that clashes.

    Args:
        outputs: what each output is (``'the scores file'``) -> its path (``None``: not written).
        inputs: what each input is (``'the target folder'``) -> a file or folder.
        input_files: every image file read (e.g. each pair's files), checked against the outputs.
    """
    resolved = {what: Path(path).resolve() for what, path in inputs.items()}
    files = {Path(path).resolve(): path for path in input_files}
    for what, output in outputs.items():
        if output is None:
            continue
        target = Path(output).resolve()
        if target in files:
            raise OutputOverInputError(f'{what} {output} is the input image {files[target]}: it would be '
                                       'overwritten; nothing was written: choose another path')
        for input_what, path in resolved.items():
            if target == path:
                raise OutputOverInputError(f'{what} {output} is {input_what} {inputs[input_what]}: it would be '
                                           'overwritten; nothing was written: choose another path')
            if path.is_dir() and target.is_relative_to(path):
                raise OutputOverInputError(f'{what} {output} lies inside {input_what} {inputs[input_what]}: '
                                           'outputs would mix with the images; nothing was written: choose a '
                                           'path outside it')
