"""Several methods against the same references: the methods x metrics table of a paper.

>>> from spips_pyiqa.evaluation.method_comparison import compare_methods
>>> comparison = compare_methods('gt/', ['out_a/', 'out_b/'], ['spips', 'lpips', 'psnr'], 'results/')
>>> print(comparison.markdown())

Each method folder is scored with :func:`~spips_pyiqa.evaluation.folder_scoring.score_folders`
into ``OUT_DIR/<method>.csv`` (resumable like any scores file); then, on the images that every
method has (matched by reference file), ``table.md`` and ``table.csv`` give per method and metric
the mean and its 95% percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13: images drawn
with replacement, :data:`RESAMPLES` times, the same draws for every method and metric, seeded);
``table.md`` adds each method's rank per metric and the rank agreement between metrics (Kendall's
tau-b between their orderings of the methods, and which pairs of methods two metrics order
oppositely); ``distributions.png`` shows the per-image values of every method, one panel per metric.
A method is named after its folder (with as many parent folders as needed to tell methods apart).
"""

import csv
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from spips_pyiqa.evaluation.folder_scoring import Reporter, score_folders
from spips_pyiqa.evaluation.fr_metrics import lower_better
from spips_pyiqa.evaluation.output_guard import refuse_outputs_over_inputs
from spips_pyiqa.evaluation.quality_maps import MapOptions
from spips_pyiqa.utils.distributed import DistInfo

__all__ = ['RESAMPLES', 'MethodComparison', 'bootstrap_means', 'compare_methods', 'method_names']

#: Bootstrap resamples of the images for each interval.
RESAMPLES = 2000
LEVEL = 0.95
_ARROW = {True: '↓', False: '↑'}


def method_names(folders: Sequence[Path]) -> list[str]:
    """Each folder's name, with parent folders added until the names differ (``a/test``, ``b/test``)."""
    parts = [Path(folder).resolve().parts for folder in folders]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ['/'.join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    raise ValueError(f'the same method folder is given twice: {", ".join(map(str, folders))}')


def bootstrap_means(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Means of ``resamples`` draws of the images with replacement, the same draws for every row.

    Shape:
        values: ``(..., n_images)``; output: ``(..., resamples)``.
    """
    n = values.shape[-1]
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    return values[..., draws].mean(axis=-1)


@dataclass(frozen=True)
class MethodComparison:
    """``values[method][metric]``: per-image scores on ``images`` (reference names), every method alike."""

    methods: list[str]
    metrics: list[str]
    images: list[str]
    values: dict[str, dict[str, np.ndarray]]
    left_out: dict[str, int]  # method -> its images that not every method has

    def mean(self, method: str, metric: str) -> float:
        return float(self.values[method][metric].mean())

    def interval(self, method: str, metric: str) -> tuple[float, float]:
        """The 95% percentile bootstrap interval of :meth:`mean`."""
        means = bootstrap_means(self.values[method][metric])
        low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
        return float(low), float(high)

    def ranks(self, metric: str) -> dict[str, float]:
        """Rank of each method by its mean (1 = best; ties share the average rank)."""
        sign = 1.0 if lower_better(metric) else -1.0
        ranked = stats.rankdata([sign * self.mean(m, metric) for m in self.methods])
        return dict(zip(self.methods, ranked.tolist()))

    def agreement(self) -> dict[tuple[str, str], float]:
        """Kendall's tau-b between the method rankings of every two metrics (NaN below 2 methods)."""
        ranks = {metric: [self.ranks(metric)[m] for m in self.methods] for metric in self.metrics}
        return {(a, b): float(stats.kendalltau(ranks[a], ranks[b]).statistic) if len(self.methods) > 1 else float('nan')
                for a, b in itertools.combinations(self.metrics, 2)}

    def disagreements(self) -> list[tuple[str, str, str, str]]:
        """(metric a, metric b, method a prefers, method b prefers): two methods ordered oppositely."""
        found = []
        for a, b in itertools.combinations(self.metrics, 2):
            ranks_a, ranks_b = self.ranks(a), self.ranks(b)
            for x, y in itertools.combinations(self.methods, 2):
                if (ranks_a[x] - ranks_a[y]) * (ranks_b[x] - ranks_b[y]) < 0:
                    found.append((a, b, x if ranks_a[x] < ranks_a[y] else y, x if ranks_b[x] < ranks_b[y] else y))
        return found

    def markdown(self) -> str:
        """``table.md``: means with intervals (best in bold), ranks, agreement between metrics."""
        head = [f'{m} {_ARROW[lower_better(m)]}' for m in self.metrics]
        best = {metric: min(self.ranks(metric).values()) for metric in self.metrics}
        lines = [
            '# Methods x metrics', '',
            f'Mean over the {len(self.images)} images that every method has, with its {LEVEL:.0%} interval '
            f'(percentile bootstrap over images, {RESAMPLES} resamples); ↓ lower is better, ↑ higher is '
            'better; best mean in bold.', '',
            '| method | ' + ' | '.join(head) + ' |', '|---' * (len(head) + 1) + '|',
        ]
        for method in self.methods:
            cells = []
            for metric in self.metrics:
                mean, (low, high) = self.mean(method, metric), self.interval(method, metric)
                text = f'{mean:.4g}'
                cells.append(f'{f"**{text}**" if self.ranks(metric)[method] == best[metric] else text} '
                             f'[{low:.4g}, {high:.4g}]')
            lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
        left_out = [f'{m}: {n}' for m, n in self.left_out.items() if n]
        if left_out:
            lines += ['', 'Images left out because not every method has them: ' + ', '.join(left_out) + '.']
        lines += ['', '## Rank of each method per metric (1 = best)', '',
                  '| method | ' + ' | '.join(head) + ' |', '|---' * (len(head) + 1) + '|']
        lines += [f'| {method} | ' + ' | '.join(f'{self.ranks(metric)[method]:g}' for metric in self.metrics) + ' |'
                  for method in self.methods]
        if len(self.metrics) > 1 and len(self.methods) > 1:
            tau = self.agreement()
            lines += ['', '## Rank agreement between metrics', '',
                      "Kendall's tau-b between the two metrics' orderings of the methods (1: the same order, "
                      '-1: reversed).', '', '| | ' + ' | '.join(self.metrics[1:]) + ' |',
                      '|---' * len(self.metrics) + '|']
            for i, a in enumerate(self.metrics[:-1]):
                cells = ['' if j <= i else f'{tau[(a, b)]:.2f}' for j, b in enumerate(self.metrics[1:], 1)]
                lines.append(f'| {a} | ' + ' | '.join(cells) + ' |')
            opposite = self.disagreements()
            lines += ['', 'Methods that two metrics order oppositely:' if opposite else
                      'Every two metrics order every two methods the same way (or tie).']
            lines += [f'- {x} vs {y}: {a} prefers {x}, {b} prefers {y}' for a, b, x, y in opposite]
        return '\n'.join(lines) + '\n'

    def write(self, out_dir: Path) -> None:
        """``table.md``, ``table.csv`` and ``distributions.png`` under ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / 'table.md').write_text(self.markdown())
        with (out_dir / 'table.csv').open('w', newline='') as handle:
            writer = csv.writer(handle, lineterminator='\n')
            direction = {m: 'lower' if lower_better(m) else 'higher' for m in self.metrics}
            writer.writerow(['method', 'images', *(f'{m} ({direction[m]} is better){part}' for m in self.metrics
                                                   for part in ('', ' ci95 low', ' ci95 high'))])
            for method in self.methods:
                writer.writerow([method, len(self.images), *(f'{v:.9g}' for m in self.metrics
                                                             for v in (self.mean(method, m), *self.interval(method, m)))])
        self.figure(out_dir / 'distributions.png')

    def figure(self, path: Path) -> Path:
        """Per-image values of every method, one box plot panel per metric (matplotlib, no display)."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(1.2 + 0.6 * len(self.methods) * len(self.metrics) + 1.0 * len(self.metrics), 3.6),
                        layout='constrained')
        for axes, metric in zip(figure.subplots(1, len(self.metrics), squeeze=False)[0], self.metrics):
            axes.boxplot([self.values[m][metric] for m in self.methods], tick_labels=self.methods)
            axes.set_title(f'{metric} ({"lower" if lower_better(metric) else "higher"} is better)')
            axes.tick_params(axis='x', labelrotation=30)
        figure.suptitle(f'{len(self.images)} images per method')
        figure.savefig(path, dpi=120)
        return path


def compare_methods(ref, methods: Sequence, metrics: Sequence[str], out_dir, *, maps: MapOptions | None = None,
                    reporter_for: Callable[[str], Reporter] | None = None, info: DistInfo | None = None,
                    **score_options) -> MethodComparison:
    """Score every folder of ``methods`` against ``ref`` into ``out_dir`` and write the comparison.

    Args:
        maps: heat maps go to ``maps.path / <method>/``.
        reporter_for: a :class:`~spips_pyiqa.evaluation.folder_scoring.Reporter` per method name.
        score_options: passed to :func:`~spips_pyiqa.evaluation.folder_scoring.score_folders`
            (``overwrite``, ``match``, ``target_suffix``, ``allow_unmatched``, ``device``, ...).
    """
    ref, out_dir, info = Path(ref), Path(out_dir), info or DistInfo()
    folders = [Path(method) for method in methods]
    names = method_names(folders)
    inputs = {'the ref folder': ref, **{f'the folder of method {n}': f for n, f in zip(names, folders)}}
    refuse_outputs_over_inputs({'the results folder': out_dir, 'the map folder': maps and maps.path}, inputs)
    results = {}
    for name, folder in zip(names, folders):
        method_maps = None if maps is None else MapOptions(maps.path / name, maps.metric, maps.value_range, maps.raw)
        results[name] = score_folders(folder, ref, metrics, out=out_dir / f'{name.replace("/", "_")}.csv',
                                      maps=method_maps, info=info,
                                      reporter=None if reporter_for is None else reporter_for(name), **score_options)
    by_ref = {name: {str(r.resolve()): i for i, (_, r) in enumerate(result.pairs)} for name, result in results.items()}
    common = sorted(set.intersection(*(set(keys) for keys in by_ref.values())), key=lambda k: Path(k).name)
    if not common:
        raise ValueError(f'no reference image of {ref} is scored for every method')
    metrics = results[names[0]].metrics
    comparison = MethodComparison(
        names, metrics, [Path(k).name for k in common],
        {name: {m: np.array([results[name].scores[m][by_ref[name][k]] for k in common]) for m in metrics}
         for name in names},
        {name: len(by_ref[name]) - len(common) for name in names},
    )
    if info.is_main:
        comparison.write(out_dir)
    return comparison
