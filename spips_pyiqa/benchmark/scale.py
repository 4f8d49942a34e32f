"""Scaling out: training triplets/s on a BAPPS-scale synthetic set, scoring pairs/s, 1 vs 2 processes.

``python -m spips_pyiqa benchmark --only scale`` (section ``scale`` of :mod:`spips_pyiqa.benchmark.run`):

* **Training** (``scale_training``): a synthetic BAPPS-layout set of ``--scale-triplets`` 64x64 train
  triplets (default 20,000; :func:`~spips_pyiqa.benchmark.synthetic_bapps.make_synthetic_bapps`, written to a
  temporary folder, never committed) is trained with the shipped recipe (``options/train_spips.yml``:
  batch 50, pyiqa's loop, PNG decoding by pyiqa's ``BAPPSDataset`` in DataLoader workers) for
  ``--scale-iters`` steps, once in one process and once under ``torchrun --nproc_per_node=2``
  (``--launcher pytorch``, gloo, batch 25 per rank: the same global batch). The rate is measured
  between the first and the last logged step (start-up excluded, stated separately) and
  extrapolated to one BAPPS epoch (151,000 train triplets).
* **Profile** (``scale_training_profile``, ``scale_training_ops``): in one process and one thread
  (the cost per core), what a step is made of: decoding + pyiqa's transforms alone, the forward
  passes alone, forward + backward + Adam step, each in triplets/s, and torch.profiler's operator
  table, so the epoch time can be attributed.
* **Scoring** (``scale_scoring``): ``python -m spips_pyiqa score`` on ``--scale-pairs`` 256x256 pairs,
  one process vs ``torchrun --nproc_per_node=2``, wall clock with start-up included (a user's run
  pays it), and whether both print and write the same results.

Every table states the machine and the load average before and after, since a shared machine
inflates the times.
"""

import math
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

import torch
import yaml

from spips_pyiqa.benchmark.processes import launch, load_average
from spips_pyiqa.benchmark.tables import Table

__all__ = ['profile_tables', 'scoring_table', 'synthetic_bapps', 'training_table']

BAPPS_TRAIN_TRIPLETS = 151_000
GOAL_MINUTES = 10.0
#: (processes, torch threads per process) timed for training and scoring: both cores in one process, one core in
#: one process, and one core each in two processes under torchrun.
CONFIGURATIONS = ((1, 2), (1, 1), (2, 1))
REPO = Path(__file__).resolve().parents[2]
_ITER_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: \[.*iter:\s*([\d,]+), lr.*time \(data\): '
                        r'([\d.]+) \(([\d.]+)\)')


def synthetic_bapps(root: Path, n_triplets: int) -> Path:
    """A prepared BAPPS-layout folder with ``n_triplets`` 64x64 train triplets (3 categories)."""
    from spips_pyiqa.benchmark.synthetic_bapps import make_synthetic_bapps
    from spips_pyiqa.data.bapps_prepare import collect_rows, default_output_dir, write_meta_info

    make_synthetic_bapps(root, n_train=math.ceil(n_triplets / 3), n_val=1, n_jnd=1, seed=1)
    write_meta_info(collect_rows(root), default_output_dir(root))
    return root


def _training_options(root: Path, name: str, batch: int, workers: int, iters: int) -> dict:
    """The shipped recipe on ``root``, CPU, ``iters`` steps, logging every 5 steps; validation (which
    pyiqa's loop needs once, at the end) on the one-triplet ``traditional`` val category only."""
    options = yaml.safe_load((REPO / 'options' / 'train_spips.yml').read_text())
    meta = root / 'meta_info'
    for block in options['datasets'].values():
        block.update(dataroot_target=str(root), meta_info_file=str(meta / 'meta_info_BAPPSDataset.csv'),
                     split_file=str(meta / 'bapps_official.pkl'), num_worker_per_gpu=workers)
    options['datasets'] = {key: options['datasets'][key] for key in ('train', 'val_traditional')}
    options['datasets']['train']['batch_size_per_gpu'] = batch
    options['val'].update(val_freq=10**9, pbar=False)
    options.update(name=name, num_gpu=0)
    options['train'].pop('total_epoch')
    options['train']['total_iter'] = iters
    options['logger'].update(print_freq=5, save_checkpoint_freq=10**9, save_latest_freq=10**9)
    return options


def _steady_rate(log: str, global_batch: int) -> tuple[float, float]:
    """(triplets/s between the first and last logged step, share of step time spent waiting for data)."""
    points = []
    for line in log.splitlines():
        match = _ITER_LINE.match(line)
        if match:
            stamp = datetime.strptime(match[1], '%Y-%m-%d %H:%M:%S,%f').timestamp()
            points.append((stamp, int(match[2].replace(',', '')), float(match[3]), float(match[4])))
    if len(points) < 2:
        raise RuntimeError('fewer than two logged steps: raise --scale-iters')
    (t0, i0, _, _), (t1, i1, step, data) = points[0], points[-1]
    return (i1 - i0) * global_batch / (t1 - t0), data / step if step else float('nan')


def training_table(root: Path, work: Path, iters: int, global_batch: int = 50, workers: int = 1) -> Table:
    """Training triplets/s of pyiqa's loop for each of :data:`CONFIGURATIONS`, and the epoch."""
    rows, notes = [], [f'Load average (1/5/15 min) before: {load_average()}.']
    for nproc, threads in CONFIGURATIONS:
        name = f'scale_{nproc}proc_{threads}thread'
        options = _training_options(root, name, global_batch // nproc, workers, iters)
        option_file = work / f'{name}.yml'
        option_file.write_text(yaml.safe_dump(options))
        args = ['-m', 'spips_pyiqa.train', '-opt', str(option_file)] + (['--launcher', 'pytorch'] if nproc > 1 else [])
        run, wall = launch(nproc, args, work, threads=threads)
        rate, data_share = _steady_rate(run.stdout + run.stderr, global_batch)
        minutes = BAPPS_TRAIN_TRIPLETS / rate / 60
        rows.append({
            'processes': nproc, 'threads each': threads, 'workers each': workers, 'batch each': global_batch // nproc,
            'steps': iters, 'triplets/s': rate, 'data wait share': data_share,
            'run wall s (start-up incl.)': wall, 'BAPPS epoch min (151k)': minutes,
            f'<= {GOAL_MINUTES:.0f} min': 'yes' if minutes <= GOAL_MINUTES else 'no',
        })
    notes.append(f'Load average (1/5/15 min) after: {load_average()}.')
    return Table('Training throughput: pyiqa loop on a synthetic BAPPS-scale set (CPU)', list(rows[0]), rows, notes,
                 digits=2)


def profile_tables(root: Path, batch: int = 50, n_batches: int = 8) -> tuple[Table, Table]:
    """One process, one thread (the cost per core): decoding alone, forward alone, forward +
    backward + step, in triplets/s; and the torch.profiler operator table of training steps."""
    from pyiqa.archs import build_network
    from pyiqa.data import build_dataset
    from torch.profiler import profile
    from torch.utils.data import DataLoader

    from spips_pyiqa import register
    from spips_pyiqa.losses.preference_loss import PreferenceBCELoss

    register()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    options = _training_options(root, 'profile', batch, 0, 1)
    dataset = build_dataset({**options['datasets']['train'], 'phase': 'train'})
    loader = DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=0,
                        generator=torch.Generator().manual_seed(0))
    start, batches = time.perf_counter(), []
    for batch_data in loader:
        batches.append(batch_data)
        if len(batches) == n_batches:
            break
    decode = n_batches * batch / (time.perf_counter() - start)

    net = build_network(dict(options['network']))
    criterion = PreferenceBCELoss()
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4, betas=(0.5, 0.999))

    def forward(data):
        d0, d1 = net(data['distA_img'], data['ref_img']), net(data['distB_img'], data['ref_img'])
        return criterion(1 / (1 + torch.exp(d1 - d0)), data['mos_label'])

    def step(data):
        optimizer.zero_grad()
        forward(data).backward()
        optimizer.step()
        net.quality.clamp_weights()

    def rate(function, no_grad: bool) -> float:
        function(batches[0])  # warm-up
        began = time.perf_counter()
        for data in batches:
            with torch.set_grad_enabled(not no_grad):
                function(data)
        return n_batches * batch / (time.perf_counter() - began)

    try:
        forward_only, full = rate(forward, True), rate(step, False)
        with profile() as profiler:
            for data in batches[:3]:
                step(data)
    finally:
        torch.set_num_threads(threads)
    serial = 1 / (1 / decode + 1 / full)
    rows = [
        {'part': 'PNG decoding + pyiqa transforms (BAPPSDataset)', 'triplets/s': decode},
        {'part': 'forward: 2 SPIPS calls (p0, p1 vs ref), no grad', 'triplets/s': forward_only},
        {'part': 'training step: forward + backward + Adam + clamp', 'triplets/s': full},
        {'part': 'one core, decoding then step (serial)', 'triplets/s': serial},
        {'part': 'two cores: 2 processes x (decoding + step), ideal scaling', 'triplets/s': 2 * serial},
    ]
    for row in rows:
        row['BAPPS epoch min (151k)'] = BAPPS_TRAIN_TRIPLETS / row['triplets/s'] / 60
    notes = [f'One process, 1 torch thread (cost per core), batch {batch}, {n_batches} batches; load average '
             f'(1/5/15 min) after: {load_average()}.',
             f'Backward + step add {100 * (forward_only / full - 1):.0f}% to the forward passes (only the '
             f'1,162 head and fusion weights learn; the backbone is frozen); decoding costs '
             f'{100 * full / decode:.0f}% of a step. The goal of {GOAL_MINUTES:.0f} min per epoch needs '
             f'{BAPPS_TRAIN_TRIPLETS / GOAL_MINUTES / 60:.0f} triplets/s.']
    total = sum(e.self_cpu_time_total for e in profiler.key_averages())
    ops = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    op_rows = [{'operator': e.key, 'calls (3 steps)': e.count, 'self CPU ms per step': e.self_cpu_time_total / 1000 / 3,
                'share': e.self_cpu_time_total / total} for e in ops]
    op_table = Table('Operators of a training step (torch.profiler, one thread, batch 50)', list(op_rows[0]), op_rows,
                     [f'3 steps of {batch} triplets; self CPU time per step.'], digits=3)
    return Table('Where a training step goes (one process, one thread, CPU)', list(rows[0]), rows, notes,
                 digits=2), op_table


def scoring_table(work: Path, n_pairs: int, size: int = 256, batch: int = 8) -> Table:
    """``score`` wall time and pairs/s for each of :data:`CONFIGURATIONS` (2 processes: ``torchrun``)."""
    from spips_pyiqa.benchmark.scoring import write_pairs

    target, ref = write_pairs(work / 'pairs', n_pairs, size, size)
    rows, notes = [], [f'Load average (1/5/15 min) before: {load_average()}.']
    outputs = {}
    for nproc, threads in CONFIGURATIONS:
        out = work / f'scores_{nproc}_{threads}.csv'
        args = ['-m', 'spips_pyiqa', 'score', str(target), str(ref), '--batch-size', str(batch), '--out', str(out)]
        run, wall = launch(nproc, args, work, threads=threads)
        outputs[nproc, threads] = run.stdout, out.read_bytes()
        rows.append({'processes': nproc, 'threads each': threads, 'pairs': n_pairs, 'size': f'{size}x{size}',
                     'batch': batch, 'wall s (start-up incl.)': wall, 'pairs/s': n_pairs / wall})
    same = len(set(outputs.values())) == 1
    notes += [f'Load average (1/5/15 min) after: {load_average()}.',
              f'Printed lines and --out files of all runs identical: {"yes" if same else "NO"}.']
    return Table('Scoring throughput: `python -m spips_pyiqa score`, 1 vs 2 processes (CPU)', list(rows[0]), rows,
                 notes, digits=2)


def scale_tables(n_triplets: int, iters: int, n_pairs: int, environment: str, say=print):
    """Yield ``(stem, table)`` for the three tables as each is measured; data lives in a temporary
    folder removed at the end."""
    data_note = (
        f'Synthetic set: {n_triplets} train triplets of 64x64 PNGs in BAPPS layout (make_synthetic_bapps, temporary '
        f'folder); shipped recipe options/train_spips.yml (batch 50, frozen AlexNet, heads + fusion learned), '
        f'{iters} steps per run; rate between the first and last logged step (every 5 steps); "data wait share" = '
        "pyiqa's data time / step time at the last log. Epoch = 151,000 / rate.")
    with tempfile.TemporaryDirectory(prefix='spips_scale_') as temporary:
        work = Path(temporary)
        began = time.perf_counter()
        root = synthetic_bapps(work / 'BAPPS', n_triplets)
        say(f'scale: {n_triplets} synthetic triplets written in {time.perf_counter() - began:.0f} s')
        profiles = profile_tables(root)
        measured = (
            ('scale_training', lambda: training_table(root, work, iters), [data_note]),
            ('scale_training_profile', lambda: profiles[0], []),
            ('scale_training_ops', lambda: profiles[1], []),
            ('scale_scoring', lambda: scoring_table(work, n_pairs), []),
        )
        for stem, measure, extra_notes in measured:
            table = measure()
            table.notes[:0] = [environment, *extra_notes]
            yield stem, table
