"""Tables of the reference-recovery test (:mod:`spips_pyiqa.benchmark.objective`).

* ``objective_ranking``: one row per optimised metric, its final PSNR and SSIM to the reference per
  start (mean over the photographs) and its mean PSNR rank over the starts, best first.
* ``objective``: one row per start x optimised metric (after a row for the start image itself), every
  evaluated metric's final value (mean over the photographs), ranked by PSNR within each start.
* ``objective_checkpoints`` (CSV only): every metric's value of every image at every checkpoint.

Their notes state the protocol, machine, load and duration, and findings computed from the numbers:
the best objective per start and where the default SPIPS variant recovers less than another.
"""

from collections.abc import Sequence

import torch

from spips_pyiqa.benchmark.objective import MEASURES, ObjectiveRun
from spips_pyiqa.benchmark.tables import Table
from spips_pyiqa.metric_configs import DEFAULT_VARIANT

__all__ = ['START_ROW', 'checkpoint_table', 'column', 'objective_tables']

#: The ``objective`` cell of the rows that describe the start image (no optimisation).
START_ROW = '(start image)'
#: A PSNR gain over the last tenth of the steps above this (dB) counts as still converging.
RISING_DB = 0.5


def column(run: ObjectiveRun, metric: str) -> str:
    """Column name of ``metric``'s values: the name and its direction, e.g. ``psnr ↑``."""
    return f'{metric} {"↓" if run.lower_better[metric] else "↑"}'


def _final(run: ObjectiveRun, objective: str) -> dict[str, torch.Tensor]:
    """metric -> mean over the photographs of its score of ``objective``'s results, shape (S,)."""
    last = run.recoveries[objective].checkpoints[run.steps]
    return {metric: run.by_start(values).mean(1) for metric, values in last.items()}


def _start_means(run: ObjectiveRun) -> dict[str, torch.Tensor]:
    return {metric: run.by_start(values).mean(1) for metric, values in run.start_scores.items()}


def _ranked(run: ObjectiveRun, start: int) -> list[str]:
    """The objectives, highest mean final PSNR from start index ``start`` first."""
    return sorted(run.recoveries, key=lambda name: -_final(run, name)['psnr'][start].item())


def _protocol(run: ObjectiveRun) -> list[str]:
    notes = [
        f'Reference recovery (Ding et al., IJCV 2021): each metric minimised over the pixels of {len(run.photos)} '
        f'scikit-image photographs ({", ".join(run.photos)}; {run.size}x{run.size}), from each start '
        f'({", ".join(run.starts)}); Adam, lr {run.lr:g} halved every fifth of {run.steps} steps, pixels clamped '
        'to [0, 1] after each step; one torch thread, seeded. Values are the mean over the photographs of each '
        'metric comparing the result with the reference (↑ higher better, ↓ lower better). Protocol: '
        '`spips_pyiqa/benchmark/objective.py`.',
        f'Run: {run.seconds / 60:.1f} min; load average (1/5/15 min) before {run.load_before}, after '
        f'{run.load_after}.',
    ]
    notes += [f'`{name}` not run at {run.size} px: pyiqa raised {error}.' for name, error in run.failed.items()]
    return notes


def _findings(run: ObjectiveRun) -> list[str]:
    """Lines computed from the results: best per start, and where the default SPIPS is worse."""
    starts = _start_means(run)
    finals = {name: _final(run, name) for name in run.recoveries}
    others = [name for name in finals if name not in MEASURES]

    def best(names: Sequence[str], index: int) -> str:
        found = {m: max(names, key=lambda n: finals[n][m][index].item()) for m in MEASURES}
        return ', '.join(f'{m} {finals[found[m]][m][index]:.3f} by `{found[m]}`' for m in MEASURES)

    lines = []
    for index, start in enumerate(run.starts):
        lines.append(f'From {start} (start: ' + ', '.join(f'{m} {starts[m][index]:.3f}' for m in MEASURES)
                     + f'): best {best(list(finals), index)}'
                     + (f'; among the objectives that are not a measure themselves: {best(others, index)}'
                        if others else '') + '.')
    lines.append('`psnr` and `ssim` optimise the measures themselves, so they are expected to lead on their own '
                 'measure; `ssim` sees the luminance only (pyiqa\'s default), so nothing drives the colour of its '
                 'results towards the reference.')
    away = []
    for index, start in enumerate(run.starts):
        names = [f'`{n}`' for n in finals if finals[n]['psnr'][index] < starts['psnr'][index]]
        if names:
            away.append(f'from {start}: {", ".join(names)}')
    lines.append('Objectives whose result is further from the reference than the start (lower PSNR): '
                 + ('; '.join(away) or 'none') + '.')
    tail = max(run.steps // 10, 1)
    rising = {name: (r.psnr[-1] - r.psnr[-1 - tail]).mean().item() for name, r in run.recoveries.items()}
    lines.append(f'Still rising at the last step (PSNR gain over the last {tail} steps, mean over the images, above '
                 f'{RISING_DB:g} dB): ' + (', '.join(f'`{n}` (+{g:.2f} dB)' for n, g in rising.items() if g > RISING_DB)
                                          or 'none')
                 + f'. The tables compare where each objective is after {run.steps} steps, not where it would end.')
    if DEFAULT_VARIANT not in finals:
        return lines
    mine, worse = finals[DEFAULT_VARIANT], []
    for index, start in enumerate(run.starts):
        clauses = []
        for m in MEASURES:
            better = sorted(((f[m][index] - mine[m][index]).item(), n) for n, f in finals.items()
                            if f[m][index] > mine[m][index])
            if better:
                clauses.append(f'{m} below ' + ', '.join(f'`{n}` (+{gap:.3f})' for gap, n in reversed(better)))
        if clauses:
            worse.append(f'from {start}: ' + '; '.join(clauses))
    lines.append(f'Where `{DEFAULT_VARIANT}` recovers less than another objective (computed from the results): '
                 + ('. '.join(worse) if worse else 'nowhere: no objective recovers a higher PSNR or SSIM') + '.')
    return lines


def _values(run: ObjectiveRun, means: dict[str, torch.Tensor], index: int) -> dict[str, float]:
    return {column(run, metric): means[metric][index].item() for metric in run.metrics}


def objective_tables(run: ObjectiveRun, environment: str) -> dict[str, Table]:
    """``objective_ranking`` and ``objective`` (see the module docstring); ``environment``: the
    machine line of :func:`spips_pyiqa.benchmark.run.environment`."""
    notes = [*_protocol(run), environment, *_findings(run)]
    starts = _start_means(run)
    ranks = {name: 0.0 for name in run.recoveries}
    detail = []
    for index, start in enumerate(run.starts):
        detail.append({'start': start, 'objective': START_ROW, **_values(run, starts, index)})
        for rank, name in enumerate(_ranked(run, index), 1):
            ranks[name] += rank / len(run.starts)
            detail.append({'start': start, 'objective': name, 'PSNR rank': rank,
                           **_values(run, _final(run, name), index),
                           'seconds': run.recoveries[name].seconds})
    measure_columns = [f'{m} {start}' for m in MEASURES for start in run.starts]
    summary = [{'objective': START_ROW, **{f'{m} {s}': starts[m][i].item() for m in MEASURES
                                           for i, s in enumerate(run.starts)}}]
    for name in sorted(ranks, key=ranks.get):
        final = _final(run, name)
        summary.append({'objective': name, 'mean PSNR rank': ranks[name], 'seconds': run.recoveries[name].seconds,
                        **{f'{m} {s}': final[m][i].item() for m in MEASURES for i, s in enumerate(run.starts)}})
    ranking = Table('Objective: which metric recovers the reference (PSNR / SSIM of the result)',
                    ['objective', 'mean PSNR rank', *measure_columns, 'seconds'], summary, notes)
    columns = ['start', 'objective', 'PSNR rank', *(column(run, m) for m in run.metrics), 'seconds']
    return {'objective_ranking': ranking,
            'objective': Table('Objective: every metric\'s value of each result, per start', columns, detail,
                               notes[:3] + ['Rows ranked by PSNR within each start; the first row of each start is '
                                            'the start image itself. Per image and checkpoint: '
                                            '`objective_checkpoints.csv`.'])}


def checkpoint_table(run: ObjectiveRun) -> Table:
    """Every metric's value of every image (start x photo) at every checkpoint of every objective;
    the start images as objective :data:`START_ROW`, step 0."""
    images: Sequence[tuple[str, str]] = [(s, p) for s in run.starts for p in run.photos]
    stages = [(START_ROW, 0, run.start_scores)]
    stages += [(name, step, scores) for name, recovery in run.recoveries.items()
               for step, scores in recovery.checkpoints.items()]
    rows = [{'objective': name, 'step': step, 'start': start, 'photo': photo,
             **{column(run, m): scores[m][i].item() for m in run.metrics}}
            for name, step, scores in stages for i, (start, photo) in enumerate(images)]
    return Table('Objective: every metric at every checkpoint, per image',
                 ['objective', 'step', 'start', 'photo', *(column(run, m) for m in run.metrics)], rows,
                 _protocol(run), digits=4)
