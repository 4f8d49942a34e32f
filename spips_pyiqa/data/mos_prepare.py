"""pyiqa meta-info and scene-wise splits for a full-reference MOS data set (``prepare-mos``).

pyiqa's ``GeneralFRDataset`` reads a meta-info CSV whose first three columns are the reference
path, the distorted path and the score, plus optionally a pickled split file
``{split_index: {'train': [rows], 'val': [rows], 'test': [rows]}}``. This module writes both from
a folder and a scores CSV (such as ``../shared/data/live_dev/scores.csv``), after checking the
scores, and makes the splits **by reference scene**: every distorted version of a scene falls in
the same fold, so no content is seen on both sides (the IQA convention; a random split by image
leaks the scene and overstates generalisation).

Split ``k`` (1-based, pyiqa's ``split_index``) holds fold ``k`` out as ``val`` (and ``test``) and
trains on the others. With one fold per scene (the default) this is leave-one-scene-out.

Checks (each a :class:`MosDataError` with a one-line message naming the row or file): missing
columns, missing image files, duplicate rows, empty / non-numeric / non-finite scores, fewer than
two scenes, an empty fold, and (:func:`check_scene_split`, also for split files made elsewhere) a
scene on both sides of a split.
"""

import csv
import math
import os
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    'META_COLUMNS',
    'MosDataError',
    'MosRow',
    'check_scene_split',
    'read_mos_folders',
    'read_scores',
    'scene_folds',
    'write_mos_meta_info',
]

#: Columns of the written meta-info CSV; pyiqa reads the first three by position.
META_COLUMNS = ('ref_name', 'dist_name', 'mos', 'scene')


class MosDataError(ValueError):
    """Unusable scores, files or splits: the message is one line naming the problem."""


@dataclass(frozen=True)
class MosRow:
    """One distorted image: paths relative to the data root, its score, scene and distortion type."""

    ref: str
    dist: str
    mos: float
    scene: str
    distortion: str = ''


def _score(text: str, line: int, column: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise MosDataError(f'line {line}: {column} is not a number: {text!r}') from None
    if not math.isfinite(value):
        raise MosDataError(f'line {line}: {column} is not finite: {text!r}')
    return value


def read_scores(
    root: Path,
    scores_csv: Path,
    dist_column: str = 'dist_img',
    ref_column: str = 'ref_img',
    mos_column: str = 'dmos',
    scene_column: str | None = None,
    distortion_column: str = 'distortion',
    ref_root: Path | None = None,
) -> list[MosRow]:
    """Read and check a scores CSV whose image paths are relative to ``root``.

    Args:
        dist_column, ref_column, mos_column: column names; an integer selects a column by
            position (pyiqa's meta-info files: 0 reference, 1 distorted, 2 score).
        scene_column: column naming the scene; default the reference image (one scene per
            reference, as in LIVE, CSIQ, TID2013, KADID-10k).
        distortion_column: column naming the distortion type, if present (else empty).
        ref_root: folder of the reference images when it is not ``root`` (pyiqa's ``dataroot_ref``).
    """
    root, scores_csv = Path(root), Path(scores_csv)
    ref_root = root if ref_root is None else Path(ref_root)
    if not scores_csv.is_file():
        raise MosDataError(f'scores file not found: {scores_csv}')
    with scores_csv.open(newline='') as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        dist_column, ref_column, mos_column = (
            header[c] if isinstance(c, int) and c < len(header) else c for c in (dist_column, ref_column, mos_column)
        )
        wanted = [dist_column, ref_column, mos_column] + ([scene_column] if scene_column else [])
        missing = [c for c in wanted if c not in (reader.fieldnames or [])]
        if missing:
            raise MosDataError(f'{scores_csv}: missing column(s) {missing}; columns are {reader.fieldnames}')
        rows, seen = [], {}
        for line, record in enumerate(reader, start=2):
            dist, ref = (record[dist_column] or '').strip(), (record[ref_column] or '').strip()
            if not dist or not ref:
                raise MosDataError(f'{scores_csv} line {line}: empty image path')
            if dist in seen:
                raise MosDataError(f'{scores_csv} line {line}: duplicate row for {dist} (first on line {seen[dist]})')
            seen[dist] = line
            mos = _score((record[mos_column] or '').strip(), line, mos_column)
            scene = (record[scene_column] if scene_column else ref).strip()
            distortion = (record.get(distortion_column) or '').strip()
            rows.append(MosRow(ref=ref, dist=dist, mos=mos, scene=scene, distortion=distortion))
    if not rows:
        raise MosDataError(f'{scores_csv}: no rows')
    absent = sorted({str(folder / p) for row in rows for folder, p in ((ref_root, row.ref), (root, row.dist))
                     if not (folder / p).is_file()})
    if absent:
        more = f' (+{len(absent) - 3} more)' if len(absent) > 3 else ''
        raise MosDataError(f'image files missing: {", ".join(absent[:3])}{more}')
    return rows


def read_mos_folders(
    roots: Sequence[Path],
    dist_column: str = 'dist_img',
    ref_column: str = 'ref_img',
    mos_column: str = 'dmos',
    scene_column: str | None = None,
) -> tuple[Path, list[MosRow]]:
    """Rows of several data folders (each with its ``scores.csv``) as one list.

    Image paths become relative to the folders' common parent (returned; the folder itself when
    only one is given). Each row keeps its scene as :func:`read_scores` names it *within its
    folder* (default its reference path, e.g. ``ref/buildings.png``), so a reference named alike in
    two folders is one scene: scene-wise folds then keep it on one side (never a leak).

    Raises:
        MosDataError: no folder, a folder's rows fail :func:`read_scores`, or one image is listed twice.
    """
    if not roots:
        raise MosDataError('no data folder given')
    roots = [Path(r).resolve() for r in roots]
    common = Path(os.path.commonpath(roots)) if len(roots) > 1 else roots[0]
    rows, seen = [], {}
    for root in roots:
        prefix = root.relative_to(common)
        for row in read_scores(root, root / 'scores.csv', dist_column, ref_column, mos_column, scene_column):
            row = replace(row, ref=(prefix / row.ref).as_posix(), dist=(prefix / row.dist).as_posix())
            if row.dist in seen:
                raise MosDataError(f'{row.dist} is listed twice (folders {seen[row.dist]} and {root})')
            seen[row.dist] = root
            rows.append(row)
    return common, rows


def scene_folds(rows: Sequence[MosRow], folds: int | None = None) -> list[list[str]]:
    """Scenes of each fold: one per scene by default, else sorted scenes dealt round-robin."""
    scenes = sorted({row.scene for row in rows})
    if len(scenes) < 2:
        raise MosDataError(f'scene-wise splits need at least 2 scenes, found {scenes}')
    folds = len(scenes) if folds is None else folds
    if not 2 <= folds <= len(scenes):
        raise MosDataError(f'--folds must be between 2 and the number of scenes ({len(scenes)}), got {folds}')
    return [scenes[k::folds] for k in range(folds)]


def _splits(rows: Sequence[MosRow], fold_scenes: Sequence[Sequence[str]]) -> dict[int, dict[str, list[int]]]:
    splits = {}
    for k, held_out in enumerate(fold_scenes, start=1):
        val = [i for i, row in enumerate(rows) if row.scene in held_out]
        if not val:
            raise MosDataError(f'fold {k} (scenes {list(held_out)}) is empty')
        train = [i for i, row in enumerate(rows) if row.scene not in held_out]
        splits[k] = {'train': train, 'val': val, 'test': list(val)}
    return splits


def check_scene_split(scenes: Sequence[str], split: dict[str, Sequence[int]], where: str = 'split') -> None:
    """Raise :class:`MosDataError` if a scene has rows in both ``train`` and ``val``/``test``.

    Args:
        scenes: scene of each meta-info row (by row index).
        split: one split, ``{'train': [rows], 'val': [rows], 'test': [rows]}``.
    """
    train = {scenes[i] for i in split.get('train', [])}
    for phase in ('val', 'test'):
        shared = sorted(train & {scenes[i] for i in split.get(phase, [])})
        if shared:
            raise MosDataError(
                f'{where}: scene(s) {shared[:3]} on both sides (train and {phase}): their content '
                'leaks into the evaluation; split by reference scene (python -m spips_pyiqa prepare-mos)'
            )


def write_mos_meta_info(
    rows: Sequence[MosRow], out_dir: Path, name: str, folds: int | None = None
) -> tuple[Path, Path, list[list[str]]]:
    """Write ``meta_info_<name>.csv`` and ``<name>_scene_splits.pkl``; return them and the folds."""
    fold_scenes = scene_folds(rows, folds)
    splits = _splits(rows, fold_scenes)
    scenes = [row.scene for row in rows]
    for k, split in splits.items():
        check_scene_split(scenes, split, where=f'split {k}')
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, split_path = out_dir / f'meta_info_{name}.csv', out_dir / f'{name}_scene_splits.pkl'
    with csv_path.open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(META_COLUMNS)
        writer.writerows((row.ref, row.dist, repr(row.mos), row.scene) for row in rows)
    with split_path.open('wb') as handle:
        pickle.dump(splits, handle)
    return csv_path, split_path, fold_scenes
