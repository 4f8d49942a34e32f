"""Scoring image pairs (two files, or two folders) with pyiqa full-reference metrics, at scale.

>>> from spips_pyiqa.evaluation.folder_scoring import score_folders
>>> result = score_folders('out/', 'gt/', ['spips', 'lpips', 'psnr'], out='scores.csv')
>>> result.mean('spips'), result.scores['psnr']    # per-pair values in target-name order

How (see also :mod:`spips_pyiqa.data.pairing`, :mod:`spips_pyiqa.evaluation.scores_file`):

- Pairs are decoded once for all metrics, by a DataLoader (``workers`` processes, ``prefetch``
  chunks ahead) in chunks of ``batch_size`` pairs; for each metric the pairs of a chunk that
  share a size are one batch. Images are read as :func:`~spips_pyiqa.data.image_io.load_image` reads them.
- ``out``: the wide scores CSV, rows journaled durably every round (``OUT.partial``) and the
  whole file renamed onto ``OUT`` at the end. A rerun computes only the (pair, metric) cells that
  are missing or whose inputs changed since (size or mtime_ns of either file, recorded per row):
  adding a metric computes that column alone; a regenerated target is rescored for every metric
  asked. Columns of metrics not asked for this time are kept (emptied for changed pairs).
  ``overwrite`` starts from nothing. An existing file that is not a scores file is never touched.
- ``maps``: SPIPS's fused quality map of every pair (:mod:`spips_pyiqa.evaluation.quality_maps`);
  a map is redrawn when missing or made from other inputs, another metric or another range.
- Outputs that are inputs, or lie inside the target or ref folder, are refused before anything
  is written (:mod:`spips_pyiqa.evaluation.output_guard`).
- Under ``torchrun`` the chunks are dealt round-robin to the ranks
  (:mod:`spips_pyiqa.utils.distributed`): rank 0 plans, reports and writes ``out``, each rank
  writes its own maps; a chunk holds the same pairs whatever the number of processes, so every
  value is the one of one process.
- The first failing pair in pair order (unreadable file, size mismatch, a metric's refusal, a
  non-finite score) stops the run with a :class:`ScoringError` naming it, after the scores
  already computed are journaled.
"""

import contextlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from spips_pyiqa.data.pair_loader import (LoadedPair, PairChunks, chunk_loader, default_workers, same_size_groups,
                                          unit_batch)
from spips_pyiqa.data.pairing import pair_images
from spips_pyiqa.evaluation.fr_metrics import check_fr_metrics, lower_better
from spips_pyiqa.evaluation.output_guard import refuse_outputs_over_inputs
from spips_pyiqa.evaluation.quality_maps import MapOptions
from spips_pyiqa.evaluation.scores_file import ScoreRow, Stamp, directions_in, pair_stamp, scores_journal
from spips_pyiqa.utils.distributed import DistInfo, chunk_rounds, gather_from_ranks
from spips_pyiqa.utils.journal import CsvJournal

__all__ = ['FolderScores', 'Reporter', 'ScoringError', 'score_folders']

_METRIC_ERRORS = (ValueError, AssertionError, RuntimeError, TypeError)


class ScoringError(ValueError):
    """A pair that cannot be scored, or a scores file that cannot be resumed: one line."""


@dataclass(frozen=True)
class FolderScores:
    """Per-pair scores in pair order: ``scores[metric][i]`` for ``pairs[i]``."""

    pairs: list[tuple[Path, Path]]
    scores: dict[str, list[float]]

    @property
    def metrics(self) -> list[str]:
        return list(self.scores)

    def mean(self, metric: str) -> float:
        return float(np.mean(self.scores[metric]))


class Reporter:
    """What a run tells its caller (rank 0 only); the default says nothing."""

    def start(self, pending: int, notes: list[str]) -> None:
        """Before scoring: ``pending`` pairs to compute, ``notes`` on what is resumed."""

    def row(self, name: str, values: dict[str, float]) -> None:
        """A pair's scores (the metrics asked), in pair order, as soon as all earlier pairs are known."""

    def advance(self, pairs: int) -> None:
        """``pairs`` more pairs computed."""

    def finish(self) -> None:
        """After the last round (also after a failure)."""


@dataclass(frozen=True, order=True)
class _Outcome:
    """The result of pair ``index``: its new values (metric, score), or the error that stops the run."""

    index: int
    values: tuple = ()
    error: str | None = None


@dataclass
class _Plan:
    """What rank 0 decided before scoring, sent to every rank."""

    pairs: list[tuple[Path, Path]]
    metrics: list[str]
    directions: dict[str, bool]  # every column of the scores file: metric -> lower_better
    stamps: list[Stamp]
    known: dict[int, dict[str, float]]
    todo: dict[int, list[str]]
    notes: list[str] = field(default_factory=list)


def _resume_notes(plan: _Plan, changed: int, dropped: dict[str, int], out: Path) -> list[str]:
    total = len(plan.pairs)
    done = {m: sum(m in plan.known.get(i, {}) for i in range(total)) for m in plan.metrics}
    notes = []
    if any(done.values()):
        if len(set(done.values())) == 1:
            notes.append(f'resuming: {next(iter(done.values()))} of {total} pairs already in {out}')
        else:
            notes.append(f'resuming from {out}: ' + ', '.join(f'{m} {n} of {total} pairs done' for m, n in done.items()))
    if changed:
        notes.append(f'{changed} of {total} rescored: inputs changed')
    for metric, count in dropped.items():
        notes.append(f'{metric}: the old scores of {count} changed pairs are left empty (not asked for this time)')
    return notes


def _plan(pairs, metrics, out: Path | None, overwrite: bool, maps: MapOptions | None, map_metric,
          folder_mode: bool) -> tuple[_Plan, CsvJournal | None]:
    """The plan and the scores journal (``None`` without ``out``); rank 0 only."""
    stamps = [pair_stamp(t, r) for t, r in pairs]
    directions = {m: lower_better(m) for m in metrics}
    latest: dict[int, ScoreRow] = {}
    journal = None
    if out is not None:
        reader = scores_journal(out, directions)
        if overwrite:
            reader.discard()
        where = {(str(t.resolve()), str(r.resolve())): i for i, (t, r) in enumerate(pairs)}
        headers = set()
        for raw in reader.read():
            row = ScoreRow.parse(raw, out)
            index = where.get((row.target, row.ref))
            if index is None:
                raise ScoringError(f'{out} holds scores of other pairs ({row.target} vs {row.ref}): choose '
                                   'another scores file, or overwrite it')
            latest[index] = row
            if tuple(raw) not in headers:  # the file's columns first, then the metrics it lacks
                headers.add(tuple(raw))
                directions = {**directions_in(list(raw)), **directions}
        journal = scores_journal(out, directions)
    known, changed, dropped = {}, 0, {}
    for index, row in latest.items():
        if row.stamp == stamps[index]:
            known[index] = dict(row.values)
            continue
        changed += 1
        for metric in row.values.keys() - set(metrics):
            dropped[metric] = dropped.get(metric, 0) + 1
    todo = {}
    for index in range(len(pairs)):
        needed = [m for m in metrics if m not in known.get(index, {})]
        if maps is not None and map_metric not in needed and not maps.is_current(
                maps.path_for(pairs, index, folder_mode), map_metric, stamps[index]):
            needed.append(map_metric)
        if needed:
            todo[index] = needed
    plan = _Plan(list(pairs), list(metrics), directions, stamps, known, todo)
    if out is not None:
        plan.notes = _resume_notes(plan, changed, dropped, out)
        journal.restart([_row(plan, i).cells(list(directions)) for i in sorted(known)])
    return plan, journal


def _row(plan: _Plan, index: int) -> ScoreRow:
    target, ref = plan.pairs[index]
    return ScoreRow(target.name, str(target.resolve()), str(ref.resolve()), plan.stamps[index], plan.known.get(index, {}))


def _one_line(error: BaseException) -> str:
    return ' '.join(str(error).split()) or type(error).__name__


class _Scorer:
    """One rank's work: the metrics, built once, applied to decoded chunks."""

    def __init__(self, plan: _Plan, device, maps: MapOptions | None, map_metric: str | None, folder_mode: bool):
        import pyiqa

        needed = list(dict.fromkeys(m for metrics in plan.todo.values() for m in metrics))
        with contextlib.redirect_stdout(sys.stderr):  # pyiqa prints where it loads weights from
            self.metrics = {name: pyiqa.create_metric(name, device=device) for name in needed}
        self.plan, self.maps, self.map_metric, self.folder_mode = plan, maps, map_metric, folder_mode

    def _batch(self, name: str, group: list[LoadedPair]) -> list[float]:
        target, ref = unit_batch(group)
        with torch.no_grad():
            if name != self.map_metric:
                return self.metrics[name](target, ref).reshape(-1).tolist()
            scores, quality_maps = self.metrics[name](target, ref, return_map=True)
        for pair, quality_map in zip(group, quality_maps):
            self.maps.save(quality_map, self.maps.path_for(self.plan.pairs, pair.index, self.folder_mode),
                           self.map_metric, self.plan.stamps[pair.index])
        return scores.reshape(-1).tolist()

    def _failure(self, pair: LoadedPair, name: str, error: BaseException) -> str:
        target, ref = self.plan.pairs[pair.index]
        return f'{target} vs {ref}: {name}: {_one_line(error)}'

    def _group(self, name: str, group: list[LoadedPair], errors: dict[int, str]) -> list[tuple[LoadedPair, float]]:
        """(pair, score) of same-size pairs as one batch; a refused batch is retried pair by pair to
        name the pair (its error goes to ``errors``)."""
        try:
            scored = list(zip(group, self._batch(name, group)))
        except _METRIC_ERRORS as error:
            if len(group) > 1:
                return [item for pair in group for item in self._group(name, [pair], errors)]
            errors[group[0].index] = self._failure(group[0], name, error)
            return []
        for pair, score in scored:
            if not math.isfinite(score):
                errors[pair.index] = self._failure(pair, name, ValueError(f'non-finite score {score}'))
        return scored

    def chunk(self, chunk: list[LoadedPair]) -> list[_Outcome]:
        """An outcome per pair of ``chunk``: every metric it needs, or the error that stops the run."""
        errors = {pair.index: pair.error for pair in chunk if pair.error is not None}
        for pair in chunk:
            if pair.error is None and pair.target.shape[:2] != pair.ref.shape[:2]:
                target, ref = self.plan.pairs[pair.index]
                errors[pair.index] = (f'{target} vs {ref}: target is {"x".join(map(str, pair.target.shape[:2]))} '
                                      f'but ref is {"x".join(map(str, pair.ref.shape[:2]))}')
        values: dict[int, dict[str, float]] = {pair.index: {} for pair in chunk}
        for name in self.metrics:
            wanted = [p for p in chunk if p.index not in errors and name in self.plan.todo[p.index]]
            for group in same_size_groups(wanted):
                for pair, score in self._group(name, group, errors):
                    values[pair.index][name] = score
        return sorted(_Outcome(i, () if i in errors else tuple(values[i].items()), errors.get(i)) for i in values)


class _Ledger:
    """Rank 0's record: every pair's values, journal rows, report lines in pair order."""

    def __init__(self, plan: _Plan, journal, reporter: Reporter):
        self.plan, self.journal, self.reporter = plan, journal, reporter
        self.next = 0

    def add(self, outcomes: list[_Outcome]) -> str | None:
        """Record one round; report what is ready; return the first error in pair order."""
        errors = {o.index: o.error for o in outcomes if o.error is not None}
        fresh = [o for o in outcomes if o.error is None]
        for outcome in fresh:
            self.plan.known.setdefault(outcome.index, {}).update(outcome.values)
            self.plan.todo.pop(outcome.index, None)
        if self.journal is not None:
            self.journal.append([_row(self.plan, o.index).cells(list(self.plan.directions)) for o in fresh])
        self.reporter.advance(len(fresh))
        while self.next < len(self.plan.pairs):
            if self.next in errors:
                return errors[self.next]
            if self.next in self.plan.todo:
                break
            values = self.plan.known[self.next]
            self.reporter.row(self.plan.pairs[self.next][0].name, {m: values[m] for m in self.plan.metrics})
            self.next += 1
        return min(errors.items())[1] if errors else None


def _agreed(value, info: DistInfo):
    """Rank 0's ``value`` on every rank."""
    return gather_from_ranks(value if info.is_main else None, info)[0]


def _first_error(error: str | None, info: DistInfo) -> str | None:
    return next((e for e in gather_from_ranks(error, info) if e is not None), None)


def score_folders(target, ref, metrics: Sequence[str], *, out=None, overwrite: bool = False,
                  maps: MapOptions | None = None, match: str = 'name', target_suffix: str = '',
                  allow_unmatched: bool = False, device='cpu', batch_size: int = 16, workers: int | None = None,
                  prefetch: int = 2, info: DistInfo | None = None, reporter: Reporter | None = None) -> FolderScores:
    """Score ``target`` against ``ref`` (two files, or two folders paired as
    :func:`~spips_pyiqa.data.pairing.pair_images` does) with every metric of ``metrics``.

    Args:
        out: the scores CSV to write (and resume from); ``overwrite``: ignore what it holds.
        maps: heat maps of a SPIPS metric (:class:`MapOptions`).
        workers: DataLoader processes (default: :func:`~spips_pyiqa.data.pair_loader.default_workers`).
        info: this process under torchrun (default: one process); the process group must be joined.
        reporter: told about progress and each pair's scores (rank 0).

    Returns the scores of every pair, on every rank. Raises :class:`ScoringError` (and the other
    ``ValueError`` s of pairing, the metric names and the output checks) with one line.
    """
    info, reporter = info or DistInfo(), reporter or Reporter()
    metrics = check_fr_metrics(metrics)
    target, ref = Path(target), Path(ref)
    out = None if out is None else Path(out)
    map_metric = None if maps is None else maps.metric_among(metrics)
    folder_mode = target.is_dir()
    plan = journal = error = None
    if info.is_main:
        try:
            pairing = pair_images(target, ref, match, target_suffix, allow_unmatched)
            outputs = {'the scores file': out, 'the map path': None if maps is None else maps.path}
            if maps is not None:
                outputs |= {f'the map {i}': maps.path_for(pairing.pairs, i, folder_mode)
                            for i in range(len(pairing.pairs))}
            refuse_outputs_over_inputs(outputs, {'the target folder' if folder_mode else 'the target': target,
                                                 'the ref folder' if folder_mode else 'the ref': ref},
                                       [path for pair in pairing.pairs for path in pair])
            plan, journal = _plan(pairing.pairs, metrics, out, overwrite, maps, map_metric, folder_mode)
            if pairing.unmatched and any(pairing.unmatched.values()):
                plan.notes.insert(0, f'not paired, not scored: {pairing.describe_unmatched()}')
        except (ValueError, OSError) as raised:
            error = raised
    failure = _agreed(None if error is None else (type(error), str(error)), info)
    if failure is not None:
        raise error if error is not None else failure[0](failure[1])
    plan = _agreed(plan, info)
    scorer, error = None, None
    try:
        scorer = _Scorer(plan, device, maps, map_metric, folder_mode)
    except (*_METRIC_ERRORS, OSError) as raised:
        error = _one_line(raised)
    error = _first_error(error, info)
    if error is not None:
        raise ScoringError(error)
    pending = sorted(plan.todo)
    chunks = [pending[start : start + batch_size] for start in range(0, len(pending), batch_size)]
    rounds = chunk_rounds(len(chunks), info)
    mine = [k for k in rounds if k is not None]
    workers = workers if workers is not None else default_workers(len(mine), device)
    batches = iter(chunk_loader(PairChunks(plan.pairs, chunks), mine, workers, prefetch))
    ledger = _Ledger(plan, journal, reporter) if info.is_main else None
    if info.is_main:
        reporter.start(len(pending), plan.notes)
    try:
        for k in rounds:
            outcomes = [] if k is None else scorer.chunk(next(batches))
            merged = sorted(o for rank_outcomes in gather_from_ranks(outcomes, info) for o in rank_outcomes)
            if ledger is not None:
                error = ledger.add(merged)
            else:
                for outcome in merged:
                    plan.known.setdefault(outcome.index, {}).update(outcome.values)
                error = next((o.error for o in merged if o.error), None)
            if error is not None:
                raise ScoringError(error)
        if ledger is not None:
            ledger.add([])  # rows of resumed pairs after the last round (or of a run with nothing to do)
            if journal is not None:
                journal.finish([_row(plan, i).cells(list(plan.directions)) for i in range(len(plan.pairs))])
    finally:
        if info.is_main:
            reporter.finish()
    return FolderScores(plan.pairs, {m: [plan.known[i][m] for i in range(len(plan.pairs))] for m in metrics})
