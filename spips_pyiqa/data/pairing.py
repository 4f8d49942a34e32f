"""Pairing target images with their references: two files, or two folders matched by name.

Folders are matched by exact file name (``match='name'``, the default) or by stem
(``match='stem'``: ``a.png`` pairs ``a.jpg``). Restoration outputs that carry a suffix, such as
super-resolution results ``a_x4_SR.png`` for the reference ``a.png``, pair with
``target_suffix='_x4_SR'``: the suffix is removed from the target's stem before matching (a target
without it pairs with nothing). Names without a partner are an error that lists them per folder,
or, with ``allow_unmatched=True``, are returned in :attr:`Pairing.unmatched` while the rest pairs.
Pairs come in target-name order. Two targets with the same stem are refused (their quality maps,
named after the stem, would overwrite each other), as are two files of a folder with the same key.
"""

from dataclasses import dataclass, field
from pathlib import Path

from spips_pyiqa.data.image_io import IMAGE_SUFFIXES

__all__ = ['MATCH_MODES', 'Pairing', 'PairingError', 'pair_images']

#: How folder files are matched: whole file name, or stem (name without suffix).
MATCH_MODES = ('name', 'stem')
_LISTED = 5  # names listed per folder in messages


class PairingError(ValueError):
    """Folders that cannot be paired as asked (unmatched names, clashing keys, no images)."""


@dataclass(frozen=True)
class Pairing:
    """``pairs``: (target, ref) paths in target-name order; ``unmatched``: folder -> names left out."""

    pairs: list[tuple[Path, Path]]
    unmatched: dict[Path, list[str]] = field(default_factory=dict)

    def describe_unmatched(self) -> str:
        """``only in FOLDER: a.png, b.png (+3 more); only in ...`` ('' when everything paired)."""
        return '; '.join(f'only in {folder}: ' + ', '.join(names[:_LISTED])
                         + (f' (+{len(names) - _LISTED} more)' if len(names) > _LISTED else '')
                         for folder, names in self.unmatched.items() if names)


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _keyed(files: list[Path], key_of, folder: Path) -> dict[str, Path]:
    keyed: dict[str, list[Path]] = {}
    for path in files:
        key = key_of(path)
        if key is not None:
            keyed.setdefault(key, []).append(path)
    clashes = {key: paths for key, paths in keyed.items() if len(paths) > 1}
    if clashes:
        listed = '; '.join(' and '.join(p.name for p in paths) for paths in clashes.values())
        raise PairingError(f'several images of {folder} pair with the same name ({listed}): keep one of each')
    return {key: paths[0] for key, paths in keyed.items()}


def pair_images(target: Path, ref: Path, match: str = 'name', target_suffix: str = '',
                allow_unmatched: bool = False) -> Pairing:
    """The (target, ref) pairs to score: the two files, or the matching images of two folders."""
    target, ref = Path(target), Path(ref)
    if target.is_dir() != ref.is_dir():
        raise PairingError(f'target and ref must both be files or both folders: {target}, {ref}')
    if not target.is_dir():
        return Pairing([(target, ref)])
    if match not in MATCH_MODES:
        raise PairingError(f'match must be one of {", ".join(MATCH_MODES)}, not {match!r}')
    target_files, ref_files = _images(target), _images(ref)
    if not target_files:
        raise PairingError(f'no images ({", ".join(sorted(IMAGE_SUFFIXES))}) in {target}')
    stems = [p.stem for p in target_files]
    clashes = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashes:  # their quality maps would overwrite each other
        raise PairingError(f'several images of {target} share a stem ({", ".join(clashes)}): rename them')

    def target_key(path: Path) -> str | None:
        if not path.stem.endswith(target_suffix):
            return None
        stem = path.stem[: len(path.stem) - len(target_suffix)]
        return stem if match == 'stem' else stem + path.suffix

    targets = _keyed(target_files, target_key, target)
    refs = _keyed(ref_files, (lambda p: p.stem) if match == 'stem' else (lambda p: p.name), ref)
    keys = sorted(targets.keys() & refs.keys(), key=lambda k: targets[k].name)
    paired_targets = {targets[k] for k in keys}
    pairing = Pairing(
        [(targets[k], refs[k]) for k in keys],
        {target: [p.name for p in target_files if p not in paired_targets],
         ref: [refs[k].name for k in sorted(refs.keys() - targets.keys(), key=lambda k: refs[k].name)]},
    )
    unmatched = pairing.describe_unmatched()
    if unmatched and not allow_unmatched:
        how = f'by {match}' + (f' once {target_suffix!r} is cut from target stems' if target_suffix else '')
        raise PairingError(f'images are paired {how}, but {unmatched}: rename or remove them, pair them '
                           'another way (match by stem, a target suffix) or allow unmatched names')
    if not pairing.pairs:
        raise PairingError(f'no image of {target} pairs with one of {ref}')
    return pairing
