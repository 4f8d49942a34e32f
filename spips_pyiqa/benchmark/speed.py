r"""Speed and memory of metrics, measured in one run on one machine, relative to pyiqa's ``lpips``.

Inputs are real photographs (scikit-image's, :mod:`spips_pyiqa.data.distortions`), upscaled where
smaller than the size and centre-cropped, each distorted by noise, blur or JPEG in turn: never
random noise, whose statistics no metric is tuned for.

Time: all metrics live in one process; after one warm-up call each, every repetition calls every
metric once on the same batch (in an order rotated per repetition), so load from other processes
hits all metrics alike. Per repetition the ratio ``time(metric) / time(lpips)`` is taken; the table
gives images/second from the median time (and the best, min) and the median ratio. On CUDA the
device is synchronised before reading the clock.

Loss: the same interleaved timing of one training step's metric work, ``metric.net(x, ref).mean()``
and its backward to ``x`` (a fresh copy of the target that requires grad), as a loss built with
``create_metric(..., as_loss=True)`` does; rows ``NAME (loss)``, relative to ``lpips (loss)``.

Compiled: rows ``NAME (compiled)`` (``spips`` and ``lpips``, :data:`COMPILED`) time the same pyiqa
metric with its network through ``torch.compile`` (backend ``inductor``, batch dimension dynamic,
image sizes static: one graph per image size, :class:`BatchDynamic`; CPU needs a C++ compiler, CUDA
triton), as a metric and as a loss. The first call of each (the compilation) is the warm-up, not
timed; its duration is stated under the table. Compiled metrics have no memory rows.

Cold compilation (:func:`cold_compile_table`): per compiled metric, as a metric and as a loss, a
subprocess (``--cold-compile``) with an empty inductor cache times the first call (compilation
included), relative to lpips', and checks that a second batch size reuses the graph.

Memory on CPU: torch's allocations are invisible to ``tracemalloc``, so each (metric, size) runs in
its own subprocess (``python -m spips_pyiqa.benchmark.speed --child``), which loads the metric and
the inputs, notes its resident set (``VmRSS``), resets the kernel's high-water mark
(``/proc/self/clear_refs``, Linux >= 4.0), runs one call and reads the new high-water mark
(``VmHWM``): *inference peak* = peak RSS during the call - RSS before it, i.e. the working memory the
call needs on top of the loaded model and inputs (first call, allocator caches included). *Process
peak* is the whole process' maximum RSS (Python, torch, model, inputs, call). Where
``clear_refs`` is refused, ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is used instead and the
method column says so. On CUDA: ``torch.cuda.max_memory_allocated`` during the call minus the
memory allocated before it. ``x lpips`` columns divide by lpips' inference peak; ``NAME (loss)``
rows measure a forward + backward step the same way.
"""

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import cache
from statistics import median

import torch
import torch.nn.functional as F
from tqdm import tqdm

from spips_pyiqa.archs.winograd import OPERATOR as WINOGRAD_OPERATOR
from spips_pyiqa.benchmark.tables import Table
from spips_pyiqa.data.distortions import PHOTOS, distort, photo

__all__ = [
    'COMPILED',
    'COMPILED_GROUPS',
    'BatchDynamic',
    'SIZES',
    'cold_compile_table',
    'compiled_metric',
    'compiled_profile_table',
    'compiler_missing',
    'component_times',
    'loss_step',
    'memory_child',
    'profile_table',
    'speed_inputs',
    'speed_tables',
    'time_interleaved',
]

#: (side in pixels, batch size) of each measured setting.
SIZES: tuple[tuple[int, int], ...] = ((64, 50), (256, 8), (1024, 1))
REFERENCE = 'lpips'
FAILED = 'n/a (fails)'
KINDS = ('noise', 'blur', 'jpeg')


@cache
def _photo_at(name: str, size: int) -> torch.Tensor:
    """Photograph ``name`` scaled (up only) so its short side is at least ``size``, centre crop."""
    image = photo(name)
    short = min(image.shape[-2:])
    if short < size:
        scale = size / short
        out = [max(size, round(s * scale)) for s in image.shape[-2:]]
        image = F.interpolate(image, size=out, mode='bicubic', align_corners=False).clamp(0, 1)
    return _centre_crop(image, size)


def _centre_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    top, left = [(s - size) // 2 for s in image.shape[-2:]]
    return image[..., top : top + size, left : left + size].contiguous()


def speed_inputs(size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``(target, ref)``: photographs cycled over :data:`PHOTOS`, distortions over
    noise/blur/JPEG at severities 1-2.

    Shape:
        Output: two :math:`(\\text{batch}, 3, \\text{size}, \\text{size})` tensors in [0, 1].
    """
    refs, targets = [], []
    for i in range(batch):
        ref = _photo_at(PHOTOS[i % len(PHOTOS)], size)
        refs.append(ref)
        targets.append(distort(ref, KINDS[i % len(KINDS)], 1 + (i // len(KINDS)) % 2))
    return torch.cat(targets), torch.cat(refs)


def _synchronize(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


LOSS_SUFFIX = ' (loss)'
#: Metrics that also get compiled rows, ``NAME (compiled)``.
COMPILED = ('spips', 'lpips')
COMPILED_SUFFIX = ' (compiled)'


def compiler_missing(device: torch.device) -> str | None:
    """Why inductor cannot compile for ``device`` here (no C++ compiler, no triton), or ``None``."""
    try:
        if device.type == 'cuda':
            import triton  # noqa: F401
        else:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
    except Exception as error:  # ImportError, inductor's InvalidCxxCompiler
        return f'{type(error).__name__}: {str(error).splitlines()[0][:120]}' if str(error) else type(error).__name__
    return None


class BatchDynamic(torch.nn.Module):
    """``torch.compile(net, backend)`` whose inputs get their batch dimension marked dynamic before
    each call (``torch._dynamo.maybe_mark_dynamic``): one graph serves every batch size (batch 1
    excepted, which dynamo specialises), image sizes stay static.

    Shape:
        - inputs: tensors :math:`(N, ...)`, any ``N``; other arguments passed as they are.
        - Output: the network's.
    """

    def __init__(self, net: torch.nn.Module, backend: str | Callable = 'inductor'):
        super().__init__()
        self.compiled = torch.compile(net, backend=backend)

    def forward(self, *inputs, **kwargs):
        for value in inputs:
            if isinstance(value, torch.Tensor) and value.ndim:
                torch._dynamo.maybe_mark_dynamic(value, 0)
        return self.compiled(*inputs, **kwargs)


def compiled_metric(metric: torch.nn.Module, backend: str | Callable = 'inductor') -> torch.nn.Module:
    """A copy of the pyiqa ``metric`` whose network is compiled with a dynamic batch dimension
    (:class:`BatchDynamic`; the original stays eager); it compiles at its first call per image
    size and grad mode."""
    twin = copy.deepcopy(metric)
    twin.net = BatchDynamic(twin.net, backend)
    return twin


def loss_step(metric, target: torch.Tensor, ref: torch.Tensor) -> Callable[[], None]:
    """One training step's work for ``metric`` as a loss: forward on a target that requires grad,
    mean over the batch, backward (what ``create_metric(name, as_loss=True)`` runs, minus pyiqa's
    input assertions)."""
    net = getattr(metric, 'net', metric)

    def step() -> None:
        with torch.enable_grad():
            x = target.detach().clone().requires_grad_(True)
            net(x, ref).mean().backward()

    return step


def time_interleaved(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    device: torch.device,
    desc: str = '',
    warmups: dict[str, float] | None = None,
) -> dict[str, object]:
    """Per name, the list of ``repeats`` wall times (s), or the error text if its warm-up failed.

    Every repetition calls every (working) function once, the order rotated by one each time.
    ``warmups``, if given, receives each warm-up call's wall time (s).
    """
    results: dict[str, object] = {}
    working = []
    for name, call in calls.items():
        try:
            start = time.perf_counter()
            with torch.no_grad():
                call()
            _synchronize(device)
            if warmups is not None:
                warmups[name] = time.perf_counter() - start
            working.append(name)
            results[name] = []
        except Exception as error:  # a metric refusing the size (pyiqa's ms_ssim below ~176 px)
            results[name] = f'{type(error).__name__}: {str(error).splitlines()[0][:120]}' if str(error) else type(error).__name__
    for rep in tqdm(range(repeats), desc=f'speed {desc}', file=sys.stderr, leave=False):
        order = working[rep % max(len(working), 1):] + working[: rep % max(len(working), 1)]
        for name in order:
            _synchronize(device)
            start = time.perf_counter()
            with torch.no_grad():
                calls[name]()
            _synchronize(device)
            results[name].append(time.perf_counter() - start)
    return results


def _ratios(times: dict[str, object], reference: str) -> dict[str, float | None]:
    """Median over repetitions of ``time / time(reference)`` in the same repetition."""
    ref = times.get(reference)
    out = {}
    for name, values in times.items():
        if isinstance(values, list) and isinstance(ref, list) and values:
            out[name] = median(v / r for v, r in zip(values, ref))
        else:
            out[name] = None
    return out


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------
def _proc_status_kib(field: str) -> int | None:
    try:
        with open('/proc/self/status') as handle:
            for line in handle:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open('/proc/self/clear_refs', 'w') as handle:
            handle.write('5')
        return True
    except OSError:
        return False


def memory_child(name: str, size: int, batch: int, device: str = 'cpu', loss: bool = False) -> dict[str, object]:
    """Run in a fresh process: peak memory of one ``name`` call on a ``size``/``batch`` input
    (with ``loss``: of one :func:`loss_step`)."""
    import gc

    import pyiqa

    from spips_pyiqa import register

    register()
    metric = pyiqa.create_metric(name, device=torch.device(device))
    target, ref = (x.to(device) for x in speed_inputs(size, batch))
    step = loss_step(metric, target, ref) if loss else lambda: metric(target, ref)
    gc.collect()
    if device.startswith('cuda'):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        with torch.no_grad():
            step()
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - before
        return {'inference_mib': extra / 2**20, 'process_mib': None, 'method': 'cuda max_memory_allocated'}
    load_peak = _proc_status_kib('VmHWM')
    before = _proc_status_kib('VmRSS')
    reset = _reset_peak() and before is not None
    with torch.no_grad():
        step()
    if reset:
        peak = _proc_status_kib('VmHWM')
        method = 'VmHWM after clear_refs - VmRSS'
    else:  # ru_maxrss cannot be reset: a peak during loading may hide part of the call's
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        before = before or 0
        method = 'ru_maxrss - VmRSS (lower bound)'
    return {
        'inference_mib': max(peak - before, 0) / 1024,
        'process_mib': max(peak, load_peak or 0) / 1024,
        'method': method,
    }


def _measure_memory(name: str, size: int, batch: int, device: str, loss: bool = False) -> dict[str, object]:
    command = [sys.executable, '-m', 'spips_pyiqa.benchmark.speed', '--child', name, str(size),
               str(batch), '--device', device] + (['--loss'] if loss else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
    if done.returncode != 0 or not lines:
        return {'error': (done.stderr.strip().splitlines() or ['failed'])[-1][:120]}
    return json.loads(lines[-1])


#: Setting whose cold compilation :func:`cold_compile_table` measures, and the second batch size
#: that must not recompile.
COLD_COMPILE_SIZE, COLD_COMPILE_BATCH, SECOND_BATCH = 256, 8, 3
#: Environment of a cold compilation: a fresh inductor cache, FX-graph and AOT-autograd caches off.
COLD_CACHE_ENV = {'TORCHINDUCTOR_FX_GRAPH_CACHE': '0', 'TORCHINDUCTOR_AUTOGRAD_CACHE': '0'}


def cold_compile_child(name: str, size: int, batch: int, second_batch: int, loss: bool = False) -> dict[str, object]:
    """Run in a fresh process with a fresh inductor cache: wall time of the first call of
    :func:`compiled_metric` (``name`` with inductor; with ``loss`` a :func:`loss_step`), i.e. the
    compilation and one run; then whether a call with ``second_batch`` images compiled a new graph."""
    import pyiqa
    from torch._dynamo.utils import counters

    from spips_pyiqa import register

    register()
    metric = compiled_metric(pyiqa.create_metric(name, device='cpu'))

    def first_call(batch_size: int) -> tuple[float, int]:
        target, ref = speed_inputs(size, batch_size)
        step = loss_step(metric, target, ref) if loss else lambda: metric(target, ref)
        graphs = counters['stats']['unique_graphs']
        start = time.perf_counter()
        with torch.no_grad():
            step()
        return time.perf_counter() - start, counters['stats']['unique_graphs'] - graphs

    seconds, graphs = first_call(batch)
    second_seconds, new_graphs = first_call(second_batch)
    return {'compile_s': seconds, 'graphs': graphs, 'second_batch_s': second_seconds, 'recompiled': new_graphs > 0}


def _measure_cold_compile(name: str, size: int, batch: int, second_batch: int, loss: bool) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix='spips_inductor_') as cache:
        env = {**os.environ, **COLD_CACHE_ENV, 'TORCHINDUCTOR_CACHE_DIR': cache}
        command = [sys.executable, '-m', 'spips_pyiqa.benchmark.speed', '--cold-compile', name, str(size),
                   str(batch), str(second_batch)] + (['--loss'] if loss else [])
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith('{')]
    if done.returncode != 0 or not lines:
        return {'error': (done.stderr.strip().splitlines() or ['failed'])[-1][:120]}
    return json.loads(lines[-1])


def cold_compile_table(names: Sequence[str], environment: str, measure: Callable = _measure_cold_compile) -> Table:
    """Cold compilation of each of ``names`` with inductor on CPU, as a metric and as a loss, each in
    a fresh process with a fresh inductor cache (:data:`COLD_CACHE_ENV`), at
    :data:`COLD_COMPILE_SIZE` px batch :data:`COLD_COMPILE_BATCH`, relative to lpips'; then one call
    with :data:`SECOND_BATCH` images: whether it recompiled (the batch dimension is dynamic)."""
    label = _size_label(COLD_COMPILE_SIZE, COLD_COMPILE_BATCH)
    table = Table(
        title='Cold torch.compile on CPU (inductor): first call, fresh cache, and relative to lpips',
        columns=['metric', f'{label} first call s', 'x lpips', 'graphs', f'b{SECOND_BATCH} recompiled', f'b{SECOND_BATCH} first call s'],
        notes=[environment,
               'Each row in its own process with an empty `TORCHINDUCTOR_CACHE_DIR` and '
               f'{", ".join(f"`{k}={v}`" for k, v in COLD_CACHE_ENV.items())}: the first call of '
               '`compiled_metric` (the network through `torch.compile(backend="inductor")`, batch '
               'dimension marked dynamic) compiles and runs once; `x lpips`: that time divided by '
               'lpips\' (`lpips (loss)`\'s for loss rows); `graphs`: graphs dynamo compiled '
               f'(graph breaks add graphs); then a call with {SECOND_BATCH} images, which should reuse '
               'the graph (`recompiled`: no).'],
        digits=1,
    )
    results = {}
    for loss in (False, True):
        for name in names:
            row = name + COMPILED_SUFFIX + (LOSS_SUFFIX if loss else '')
            results[row] = measure(name, COLD_COMPILE_SIZE, COLD_COMPILE_BATCH, SECOND_BATCH, loss)
    for row, result in results.items():
        if 'error' in result:
            table.rows.append({'metric': row, f'{label} first call s': f'error: {result["error"]}'})
            continue
        reference = results.get(REFERENCE + COMPILED_SUFFIX + (LOSS_SUFFIX if row.endswith(LOSS_SUFFIX) else ''), {})
        table.rows.append({
            'metric': row, f'{label} first call s': result['compile_s'],
            'x lpips': result['compile_s'] / reference['compile_s'] if 'compile_s' in reference else None,
            'graphs': result['graphs'], f'b{SECOND_BATCH} recompiled': 'yes' if result['recompiled'] else 'no',
            f'b{SECOND_BATCH} first call s': result['second_batch_s'],
        })
    return table


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def _size_label(size: int, batch: int) -> str:
    return f'{size}px b{batch}'


def speed_tables(
    metrics: dict[str, torch.nn.Module],
    device: torch.device,
    repeats: int,
    memory: bool,
    environment: str,
    loss: bool = True,
    compiled: Sequence[str] = COMPILED,
) -> tuple[list[Table], dict]:
    """Time (and memory) of every metric at every :data:`SIZES` setting on ``device``, as a metric
    (no grad) and, with ``loss``, as a loss (forward + backward, rows ``NAME (loss)``); the
    ``compiled`` ones among them also through :func:`compiled_metric` (rows ``NAME (compiled)``),
    where :func:`compiler_missing` finds a compiler.

    Returns the tables and the raw measurements ``{(size, batch): {'times', 'ratios', 'memory',
    'warmups'}}``, loss measurements under the row names ``NAME (loss)``.
    """
    raw = {}
    missing = compiler_missing(device) if any(name in metrics for name in compiled) else None
    if missing is None:
        metrics = {**metrics, **{name + COMPILED_SUFFIX: compiled_metric(metrics[name]) for name in compiled if name in metrics}}
    rows = list(metrics) + ([name + LOSS_SUFFIX for name in metrics] if loss else [])
    for size, batch in SIZES:
        target, ref = (x.to(device) for x in speed_inputs(size, batch))
        calls = {name: (lambda m=m, t=target, r=ref: m(t, r)) for name, m in metrics.items()}
        warmups: dict[str, float] = {}
        times = time_interleaved(calls, repeats, device, desc=f'{device.type} {size}px', warmups=warmups)
        ratios = _ratios(times, REFERENCE)
        if loss:
            steps = {name + LOSS_SUFFIX: loss_step(m, target, ref) for name, m in metrics.items()}
            loss_times = time_interleaved(steps, repeats, device, desc=f'{device.type} {size}px loss', warmups=warmups)
            times.update(loss_times)
            ratios.update(_ratios(loss_times, REFERENCE + LOSS_SUFFIX))
        raw[(size, batch)] = {'times': times, 'ratios': ratios, 'memory': {}, 'warmups': warmups}
    if memory:
        jobs = [(name, size, batch) for size, batch in SIZES for name in rows if COMPILED_SUFFIX not in name]
        for name, size, batch in tqdm(jobs, desc=f'memory {device.type}', file=sys.stderr):
            if isinstance(raw[(size, batch)]['times'][name], str):
                continue
            metric_name = name.removesuffix(LOSS_SUFFIX)
            raw[(size, batch)]['memory'][name] = _measure_memory(
                metric_name, size, batch, str(device), loss=name.endswith(LOSS_SUFFIX))
    labels = [_size_label(*setting) for setting in SIZES]
    time_table = Table(
        title=f'Speed on {device.type.upper()}: images/second (median, best) and time relative to lpips',
        columns=['metric', *[f'{label} {stat}' for label in labels for stat in ('img/s', 'best img/s', 'x lpips')]],
        notes=[
            environment,
            f'Real photographs (scikit-image) with noise/blur/JPEG; {repeats} interleaved repetitions '
            'after a warm-up call; `x lpips` = median over repetitions of time(metric) / time(lpips) '
            f'in the same repetition (above 1: slower than pyiqa\'s lpips). `{FAILED}`: the metric '
            'raises at that size.',
            '`NAME (loss)` rows: one forward + backward step to the target (`metric.net(x, ref).mean()'
            '.backward()`, what `create_metric(NAME, as_loss=True)` runs), relative to `lpips (loss)`.',
            *_compiled_notes(raw, [name for name in rows if COMPILED_SUFFIX in name], missing, compiled),
            *_convolution_notes(metrics),
        ],
        digits=2,
    )
    memory_table = Table(
        title=f'Peak memory on {device.type.upper()} (MiB): one call, and relative to lpips',
        columns=['metric', *[f'{label} {stat}' for label in labels for stat in ('inference', 'x lpips', 'process')]],
        notes=[
            environment,
            '`inference`: peak resident memory during one call minus the resident memory before it '
            '(model and inputs loaded), in a fresh subprocess per (metric, size); `x lpips`: that '
            'peak divided by lpips\' (`lpips (loss)`\'s for loss rows); `process`: that subprocess\' '
            'peak RSS (Python + torch + model + inputs + call). `NAME (loss)` rows: one forward + '
            'backward step. CUDA: `max_memory_allocated` minus memory allocated before the call. '
            'Compiled metrics are not measured (no rows).',
        ],
        digits=2,
    )
    methods = set()
    for name in rows:
        reference = REFERENCE + LOSS_SUFFIX if name.endswith(LOSS_SUFFIX) else REFERENCE
        time_row, memory_row = {'metric': name}, {'metric': name}
        for (size, batch), label in zip(SIZES, labels):
            entry = raw[(size, batch)]
            values = entry['times'][name]
            if isinstance(values, str):
                time_row.update({f'{label} img/s': FAILED, f'{label} best img/s': FAILED, f'{label} x lpips': FAILED})
                memory_row.update({f'{label} inference': FAILED, f'{label} x lpips': FAILED, f'{label} process': FAILED})
                continue
            time_row[f'{label} img/s'] = batch / median(values) if values else None
            time_row[f'{label} best img/s'] = batch / min(values) if values else None
            time_row[f'{label} x lpips'] = entry['ratios'][name]
            mem, ref_mem = entry['memory'].get(name), entry['memory'].get(reference)
            if mem and 'error' not in mem:
                memory_row[f'{label} inference'] = mem['inference_mib']
                memory_row[f'{label} process'] = mem['process_mib']
                if ref_mem and 'error' not in ref_mem and ref_mem['inference_mib'] > 0:
                    memory_row[f'{label} x lpips'] = mem['inference_mib'] / ref_mem['inference_mib']
                methods.add(mem['method'])
            elif mem:
                memory_row[f'{label} inference'] = f'error: {mem["error"]}'
        time_table.rows.append(time_row)
        if COMPILED_SUFFIX not in name:
            memory_table.rows.append(memory_row)
    memory_table.notes.append(f'Method: {", ".join(sorted(methods)) or "not measured"}.')
    tables = [time_table] + ([memory_table] if memory else [])
    return tables, raw


def _convolution_notes(metrics: dict[str, torch.nn.Module]) -> list[str]:
    """The CPU convolutions the SPIPS backbones run on this machine (``backbone_layout``), one line
    per choice with the metrics that made it."""
    from spips_pyiqa.archs.backbone_layout import CPU_CONVOLUTIONS_ENV, cpu_convolution_mode
    from spips_pyiqa.benchmark.cache import spips_convolutions

    choices: dict[str, list[str]] = {}
    for name, metric in metrics.items():
        chosen = spips_convolutions(metric)
        if chosen and COMPILED_SUFFIX not in name:
            choices.setdefault(', '.join(f'{layer} {kind}' for layer, kind in chosen.items()), []).append(name)
    return [f'AlexNet convolutions on this CPU ({CPU_CONVOLUTIONS_ENV}={cpu_convolution_mode()}; `Conv2d` = plain, '
            f'as pyiqa\'s lpips) of {", ".join(names)}: {listed}.' for listed, names in choices.items()]


def _compiled_notes(raw: dict, names: Sequence[str], missing: str | None, compiled: Sequence[str]) -> list[str]:
    """The note on the compiled rows: how they are made and what their first call (compilation) took."""
    if missing is not None:
        return [f'No `NAME (compiled)` rows: inductor has no compiler here ({missing}).']
    if not names:
        return []
    spent = '; '.join(
        f'{name} {size}px: {entry["warmups"][name]:.0f} s'
        for (size, _), entry in raw.items() for name in names if name in entry['warmups']
    )
    return [f'`NAME (compiled)` rows ({", ".join(compiled)}): the same pyiqa metric with `torch.compile('
            'metric.net, backend="inductor")`, batch dimension dynamic; timed after the first call per '
            f'shape, which compiles (first call in this process, compilation included: {spent or "none succeeded"}; '
            'a cold compilation, fresh cache, in `compile_cpu.md`).']


#: Product targets: forward time x lpips' at every size (issue 11); as a loss and compiled (as a
#: metric and as a loss), x lpips' own (compiled) time at every size (issue 24); peak memory x lpips'.
FORWARD_TARGET, LOSS_TARGET, COMPILED_TARGET, MEMORY_TARGET = 1.2, 1.0, 1.0, 1.3


def target_check(raw: dict, name: str = 'spips') -> list[str]:
    """Lines saying whether ``name`` meets the product targets: forward time at most
    :data:`FORWARD_TARGET` x lpips' at every size, as a loss at most :data:`LOSS_TARGET` x lpips'
    loss time, compiled (as a metric and as a loss) at most :data:`COMPILED_TARGET` x compiled
    lpips' (the ratio of the two rows' median ratios to eager lpips), peak memory at most
    :data:`MEMORY_TARGET` x; and whether it is faster than pyiqa's ssim and ms_ssim where they run."""

    def verdict(ok: bool) -> str:
        return 'meets' if ok else 'MISSES'

    lines = []
    for (size, batch), entry in raw.items():
        ratios, memory = entry['ratios'], entry.get('memory', {})
        if ratios.get(name) is None:
            continue
        own = ratios[name]
        lines.append(f'{size}px b{batch}: {name} takes {own:.2f}x lpips time: '
                     f'{verdict(own <= FORWARD_TARGET)} the <= {FORWARD_TARGET}x target.')
        loss = ratios.get(name + LOSS_SUFFIX)
        if loss is not None:
            lines.append(f'{size}px b{batch}: {name} as a loss takes {loss:.2f}x lpips\' loss time: '
                         f'{verdict(loss <= LOSS_TARGET)} the <= {LOSS_TARGET}x target.')
        for kind in ('', LOSS_SUFFIX):
            compiled, reference = ratios.get(name + COMPILED_SUFFIX + kind), ratios.get(REFERENCE + COMPILED_SUFFIX + kind)
            if compiled is not None and reference:
                factor = compiled / reference
                lines.append(f'{size}px b{batch}: {name}{COMPILED_SUFFIX}{kind} takes {factor:.2f}x '
                             f'{REFERENCE}{COMPILED_SUFFIX}{kind}\'s time: {verdict(factor <= COMPILED_TARGET)} '
                             f'the <= {COMPILED_TARGET}x target.')
        for row, reference in ((name, REFERENCE), (name + LOSS_SUFFIX, REFERENCE + LOSS_SUFFIX)):
            own_mem, ref_mem = memory.get(row), memory.get(reference)
            if own_mem and ref_mem and 'error' not in own_mem and 'error' not in ref_mem and ref_mem['inference_mib'] > 0:
                factor = own_mem['inference_mib'] / ref_mem['inference_mib']
                lines.append(f'{size}px b{batch}: {row} peak memory {factor:.2f}x {reference}\'s: '
                             f'{verdict(factor <= MEMORY_TARGET)} the <= {MEMORY_TARGET}x target.')
        for other in ('ssim', 'ms_ssim'):
            if ratios.get(other) is not None:
                faster = own < ratios[other]
                lines.append(
                    f'{size}px b{batch}: {name} {own:.2f}x vs {other} {ratios[other]:.2f}x lpips time: '
                    + ('faster' if faster else f'NOT faster than {other}') + '.'
                )
    return lines


# --------------------------------------------------------------------------------------------
# where SPIPS spends its time
# --------------------------------------------------------------------------------------------
def _backward_of(forward: Callable[[torch.Tensor], object], target: torch.Tensor) -> Callable[[], None]:
    """One forward + backward of ``forward(x)`` (a tensor or nested lists of tensors, summed) to a
    fresh copy ``x`` of ``target``."""

    def total(value) -> torch.Tensor:
        return value.sum() if isinstance(value, torch.Tensor) else sum(total(v) for v in value)

    def step() -> None:
        with torch.enable_grad():
            total(forward(target.detach().clone().requires_grad_(True))).backward()

    return step


def component_times(metric, size: int, batch: int, repeats: int, reference=None) -> Table:
    """Median time of the parts of a SPIPS call, as a metric and as a loss (forward + backward to the
    target): input checks, deep features, traditional maps (as the score computes them, for heads
    where all seven weigh, and at full resolution as ``return_map`` needs them), heads and fusion,
    and the whole pyiqa call (and of a ``reference`` metric's whole call, e.g. lpips), interleaved
    like :func:`time_interleaved`."""
    from spips_pyiqa.archs.input_checks import check_image_pair
    from spips_pyiqa.archs.traditional_maps import traditional_maps, traditional_means

    net = metric.net
    target, ref = speed_inputs(size, batch)
    maps = net.distance_maps(target, ref, pooled=True)
    calls = {'pyiqa call (total)': lambda: metric(target, ref),
             'input checks (check_image_pair)': lambda: check_image_pair(target, ref),
             'deep features (backbone x2 + normalise + diff, means as the score takes them)':
                 lambda: net.deep(target, ref, mean=True),
             'heads + fusion': lambda: net.quality(maps)}
    losses = {'loss step (total)': loss_step(metric, target, ref),
              'deep features (means) as a loss': _backward_of(lambda x: net.deep(x, ref, mean=True), target)}
    if 'traditional' in net.groups:
        needed = net.traditional_channels_needed()
        calls[f'traditional map means, as the score computes them ({sum(needed)} of 7 maps weigh)'] = (
            lambda: traditional_means(target, ref, net.window, needed))
        calls['traditional map means, all 7 maps (heads where every map weighs)'] = (
            lambda: traditional_means(target, ref, net.window))
        calls['traditional maps at full resolution (return_map / quality_maps only)'] = (
            lambda: traditional_maps(target, ref, net.window))
        losses[f'traditional map means as a loss ({sum(needed)} of 7 maps weigh)'] = (
            _backward_of(lambda x: traditional_means(x, ref, net.window, needed), target))
    if reference is not None:
        calls[f'pyiqa {reference.metric_name} call (for comparison)'] = lambda: reference(target, ref)
        losses[f'pyiqa {reference.metric_name} loss step (for comparison)'] = loss_step(reference, target, ref)
    times = time_interleaved({**calls, **losses}, repeats, torch.device('cpu'), desc='components')
    table = Table(
        title=f'Where {metric.metric_name} spends its time: {size}x{size}, batch {batch}, CPU',
        columns=['part', 'median ms', 'share of total'],
        notes=[f'Each part called on its own, {repeats} interleaved repetitions (median); shares are '
               'of the SPIPS total of their kind (call or loss step), so parts need not add up to '
               'exactly 100%. The score path uses the means of the deep squared differences and of the '
               'traditional maps (no upsampled MS-SSIM maps) and skips maps whose head weight is 0; the '
               'three traditional rows are '
               'alternatives, not parts of one call. Loss rows: forward + backward to the target '
               '(a part\'s outputs summed), as `create_metric(..., as_loss=True)` runs.'],
        digits=1,
    )
    for parts, total_name in ((calls, 'pyiqa call (total)'), (losses, 'loss step (total)')):
        total = median(times[total_name])
        for part in parts:
            values = median(times[part])
            table.rows.append({'part': part, 'median ms': values * 1e3, 'share of total': f'{values / total:.0%}'})
    return table


def profile_table(metrics: dict[str, object], size: int, batch: int, top: int = 15) -> Table:
    """torch.profiler: per metric (e.g. spips and lpips), as a metric and as a loss
    (:func:`loss_step`), the ``top`` operators (per input shape) by self CPU time over 3 calls,
    after a warm-up call."""
    from torch.profiler import ProfilerActivity, profile

    target, ref = speed_inputs(size, batch)
    table = Table(
        title=f'torch.profiler: top {top} operators of {", ".join(metrics)}, as a metric and as a loss, '
              f'{size}x{size} batch {batch}, CPU',
        columns=['call', 'operator', 'input shapes', 'calls', 'self CPU ms (3 calls)', 'share'],
        notes=['Self CPU time of each operator and input shapes over 3 calls, after a warm-up call; '
               '`share`: of all operators\' self time in that call (first row of each call: the total). '
               'Loss: forward + backward to the target.'],
        digits=1,
    )
    for name, metric in metrics.items():
        for kind, call in (('metric', lambda m=metric: m(target, ref)), ('loss', loss_step(metric, target, ref))):
            with torch.no_grad():
                call()
                with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                    for _ in range(3):
                        call()
            events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: e.self_cpu_time_total, reverse=True)
            total = sum(e.self_cpu_time_total for e in events) or 1
            label = f'{name} ({kind})'
            table.rows.append({'call': label, 'operator': 'all operators', 'input shapes': '', 'calls': None,
                               'self CPU ms (3 calls)': total / 1e3, 'share': '100%'})
            for event in events[:top]:
                shapes = ', '.join(str(list(shape)) for shape in event.input_shapes if shape)
                table.rows.append({'call': label, 'operator': event.key, 'input shapes': shapes, 'calls': event.count,
                                   'self CPU ms (3 calls)': event.self_cpu_time_total / 1e3,
                                   'share': f'{event.self_cpu_time_total / total:.0%}'})
    return table


def _within(event, name: str) -> bool:
    """Whether the profiler ``event`` is operator ``name`` or runs inside it."""
    while event is not None:
        if event.key == name:
            return True
        event = event.cpu_parent
    return False


def _backbone_convolution(event) -> bool:
    """oneDNN's direct convolution with a kernel larger than 1x1 (AlexNet's, not the heads')."""
    shapes = event.input_shapes
    return event.key == 'aten::mkldnn_convolution' and len(shapes) > 1 and list(shapes[1][2:]) != [1, 1]


#: Operator groups of :func:`compiled_profile_table`, first match wins: (label, test on a profiler event).
COMPILED_GROUPS: tuple[tuple[str, Callable], ...] = (
    ('backbone convolutions (oneDNN)', _backbone_convolution),
    ('backbone convolutions (Winograd: SPIPS, AlexNet layers 3-5)', lambda event: _within(event, WINOGRAD_OPERATOR)),
    ('1x1 convolutions (heads, LPIPS lin layers)', lambda event: event.key == 'aten::mkldnn_convolution'),
    ('matrix products (bmm, mm: SPIPS filters and resizes)', lambda event: event.key in ('aten::bmm', 'aten::mm')),
    ('kernels inductor generated (fused elementwise, pooling, gathers)', lambda event: event.key.startswith('graph_')),
)


def compiled_profile_table(metrics: dict[str, object], size: int, batch: int, calls: int = 5) -> Table:
    """Where each compiled metric's call goes (``torch.compile``, inductor, as in the speed tables):
    self CPU time per call of the operator groups of :data:`COMPILED_GROUPS`, profiled over
    ``calls`` interleaved calls after two warm-up calls, with inductor's per-kernel profiling on (so it
    compiles afresh: ``torch._dynamo.reset()``, inductor's graph cache off), and each
    group's difference from the first metric's (``lpips`` below means ``metrics``' first)."""
    from torch._functorch import config as functorch_config
    from torch._inductor import config as inductor_config
    from torch.profiler import ProfilerActivity, profile

    target, ref = speed_inputs(size, batch)
    labels = [label for label, _ in COMPILED_GROUPS] + ['everything else', 'total']
    per_metric = {f'{name} (compiled)': dict.fromkeys(labels, 0.0) for name in metrics}
    # compiled afresh: code from dynamo's or inductor's caches (the speed tables' compilations) has no
    # kernel profiling, so dynamo forgets its compiled frames and inductor's graph cache is off
    torch._dynamo.reset()
    fresh = {'cpp.enable_kernel_profile': True, 'fx_graph_cache': False}
    with inductor_config.patch(fresh), functorch_config.patch(enable_autograd_cache=False), torch.no_grad():
        compiled = {f'{name} (compiled)': compiled_metric(metric) for name, metric in metrics.items()}
        for call in compiled.values():
            for _ in range(2):
                call(target, ref)
        for _ in range(calls):  # interleaved, as the speed tables: load hits all metrics alike
            for name, call in compiled.items():
                with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
                    call(target, ref)
                for event in prof.events():
                    label = next((lab for lab, test in COMPILED_GROUPS if test(event)), 'everything else')
                    for key in (label, 'total'):
                        per_metric[name][key] += event.self_cpu_time_total / calls / 1e3
    first, *others = per_metric
    columns = [f'{name} ms' for name in per_metric] + [f'{name} - {first} ms' for name in others]
    table = Table(
        title=f'Compiled calls by operator group: {", ".join(per_metric)}, {size}x{size} batch {batch}, CPU',
        columns=['operator group'] + columns,
        notes=[f'torch.profiler self CPU time per call (mean of {calls} interleaved calls after two warm-up calls), with '
               'inductor\'s kernel profiling on (`cpp.enable_kernel_profile`), so its generated kernels appear '
               'by name; the profiler adds a little to every operator, so totals exceed the speed table\'s. '
               '"everything else": the compiled graph\'s own Python and the profiler\'s records.'],
        digits=1,
    )
    for group in labels:
        row = {'operator group': group}
        row.update({f'{name} ms': groups[group] for name, groups in per_metric.items()})
        row.update({f'{name} - {first} ms': per_metric[name][group] - per_metric[first][group] for name in others})
        table.rows.append(row)
    return table


def _child_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description='memory or cold compilation of one metric (benchmark helper)')
    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument('--child', nargs=3, metavar=('METRIC', 'SIZE', 'BATCH'), help='peak memory of one call')
    job.add_argument('--cold-compile', nargs=4, metavar=('METRIC', 'SIZE', 'BATCH', 'SECOND_BATCH'),
                     help='first compiled call, then whether SECOND_BATCH images recompile (CPU)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--loss', action='store_true', help='measure a forward + backward step')
    args = parser.parse_args(argv)
    if args.cold_compile:
        name, *numbers = args.cold_compile
        print(json.dumps(cold_compile_child(name, *map(int, numbers), loss=args.loss)))
        return 0
    name, size, batch = args.child[0], int(args.child[1]), int(args.child[2])
    print(json.dumps(memory_child(name, size, batch, args.device, args.loss)))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('PYTHONWARNINGS', 'ignore')
    sys.exit(_child_main(sys.argv[1:]))
