r"""SPIPS as an optimisation objective: the reference-recovery test of Ding et al. (IJCV 2021).

K. Ding, K. Ma, S. Wang and E. P. Simoncelli, "Comparison of full-reference image quality models for
optimization of image processing systems", International Journal of Computer Vision 129, 2021: a metric
``D(x, r)`` fit for optimisation should lead gradient descent over the pixels of ``x``, started from a
distorted copy of the reference ``r``, back to ``r``; a metric with blind spots stops at an image it
scores well that is not ``r``. ``python -m spips_pyiqa benchmark --only objective`` (section
``objective`` of :mod:`spips_pyiqa.benchmark.run`) runs it for every metric of :func:`default_objectives`.

Protocol (the defaults; ``--objective-size``, ``--objective-steps``, ``--objective-photos`` and
``--objective-metrics`` change them):

* **references**: the scikit-image photographs of :data:`PHOTOS` (astronaut, coffee, chelsea), each
  resized (antialiased) so that its short side is :data:`SIZE` (64) px, then centre-cropped to a
  square (:func:`reference`). 64 px is the patch size LPIPS was trained on and the smallest SPIPS
  accepts; it keeps the three VGG metrics within the time budget on a 2-core CPU. pyiqa's ``ms_ssim``
  needs at least 176 px (five scales of an 11 px window): below that it cannot run, and the table says
  so with pyiqa's error.
* **starts** (:data:`STARTS`, :func:`start_image`): each reference with Gaussian noise (σ = 0.1),
  Gaussian blur (σ = 2 px), JPEG (quality 10), or blur then noise, through
  :mod:`spips_pyiqa.data.distortions`; the noise of photo ``i`` is seeded with ``SEED + i``.
* **optimiser**: Adam (default betas) on the pixels themselves, learning rate :data:`LR` (0.02) halved
  every fifth of the :data:`STEPS` (100) steps (the budget: minutes for all metrics on a 2-core CPU;
  several curves still rise at the end, and the tables say which), and after every step the pixels
  are **projected onto [0, 1]** (clamped in place), as in the authors' ``examples/recover.py``
  (github.com/dingkeyan93/IQA-optimization: Adam, clamp after each step, step size halved during the
  run). Not a sigmoid of free parameters: it cannot reach the photographs'
  black and white pixels and shrinks the step of dark and bright pixels; not a clamp inside the loss:
  its gradient is zero outside [0, 1], so a pixel that overshoots stays stuck there.
* **objective**: the metric built by ``pyiqa.create_metric(name, as_loss=True,
  loss_reduction='none')`` with its parameters frozen: its per-image score, summed over the batch.
  pyiqa 0.1.16's ``as_loss`` only enables gradients and reduces; it does **not** negate metrics whose
  ``lower_better`` is ``False`` (``psnr``, ``ssim``, ``ms_ssim``), so :func:`recover` minimises
  ``score`` when ``lower_better`` and ``-score`` otherwise. pyiqa's ``ssim`` and ``ms_ssim`` compare
  the luminance (Y of YIQ) only: as objectives, nothing drives the colour towards the reference.
* **batch**: all photographs x starts are optimised in one batch per objective; each metric scores
  every image on its own and Adam and the projection act per pixel, so this is the same as one run
  per image (``tests/test_objective.py`` checks it).
* **records**: the PSNR to the reference of every image after every step (the curves); every metric
  of the run (the optimised one included) and :data:`MEASURES` (psnr, ssim) on every image at the
  checkpoints: the start (step 0, once: it is the same for every objective), every
  :data:`CHECK_EVERY` (50) steps and the last step.
* **determinism**: one torch thread during the section (the result does not depend on the number of
  cores; on a shared machine it also avoids oversubscription), ``torch.manual_seed(SEED)``
  before each objective, no randomness in the loop: the same configuration gives the same numbers.

The tables (:func:`spips_pyiqa.benchmark.objective_report.objective_tables`) give the final values,
mean over the photographs, ranked by PSNR within each start; the figures are in
:mod:`spips_pyiqa.benchmark.figures`.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torchvision.transforms.functional as TF

from spips_pyiqa.benchmark.processes import load_average
from spips_pyiqa.data.distortions import DISTORTIONS, photo
from spips_pyiqa.metric_configs import LABEL_FREE, LABEL_FREE_SUFFIX, VARIANTS

__all__ = ['CHECK_EVERY', 'LR', 'MEASURES', 'PHOTOS', 'SIZE', 'STARTS', 'STEPS', 'ObjectiveRun', 'Recovery',
           'default_objectives', 'load_objectives', 'one_thread', 'recover', 'reference', 'run_objective', 'start_image']

PHOTOS = ('astronaut', 'coffee', 'chelsea')
SIZE = 64
STEPS = 100
LR = 0.02
CHECK_EVERY = 50
SEED = 0
#: start name -> the (distortion, severity 0-3 of DISTORTIONS) applied to the reference, in order.
STARTS = {
    'noise': (('noise', 2),),
    'blur': (('blur', 2),),
    'jpeg': (('jpeg', 2),),
    'blur+noise': (('blur', 2), ('noise', 2)),
}
#: The baselines, optimised like SPIPS.
BASELINES = ('lpips', 'lpips-vgg', 'dists', 'ssim', 'ms_ssim', 'psnr')
#: How close a result is to its reference: evaluated in every run, optimised or not.
MEASURES = ('psnr', 'ssim')


def default_objectives() -> list[str]:
    """The metrics optimised by default: the SPIPS variants the benchmark compares (those of
    :data:`~spips_pyiqa.metric_configs.VARIANTS` with cross-validated heads; ``spips-squeeze``'s
    backbone has no offline source), the label-free twin of each whose default heads are not
    label-free, then :data:`BASELINES`."""
    compared = [name for name, variant in VARIANTS.items() if variant.human_trained]
    twins = [name + LABEL_FREE_SUFFIX for name in compared if VARIANTS[name].heads != LABEL_FREE]
    return compared + twins + list(BASELINES)


def reference(name: str, size: int) -> torch.Tensor:
    r"""scikit-image photograph ``name`` resized so its short side is ``size``, centre-cropped square.

    Shape:
        Output: :math:`(1, 3, \text{size}, \text{size})`, values in [0, 1].
    """
    image = TF.resize(photo(name), [size], antialias=True)
    return TF.center_crop(image, [size, size]).clamp(0, 1)


def start_image(ref: torch.Tensor, start: str, seed: int) -> torch.Tensor:
    """``ref`` distorted as :data:`STARTS` ``[start]`` says; ``seed`` seeds the noise.

    Shape:
        ref: :math:`(N, 3, H, W)` in [0, 1]; Output: the same.
    """
    image = ref
    for kind, severity in STARTS[start]:
        function, levels = DISTORTIONS[kind]
        image = function(image, levels[severity], **({'seed': seed} if kind == 'noise' else {}))
    return image


def load_objectives(names: Sequence[str]) -> dict[str, torch.nn.Module]:
    """``pyiqa.create_metric(name, as_loss=True, loss_reduction='none')`` on CPU per name, frozen:
    per-image scores, with a graph to the target only."""
    import pyiqa

    from spips_pyiqa import register

    register()
    metrics = {}
    for name in names:
        metric = pyiqa.create_metric(name, as_loss=True, loss_reduction='none', device=torch.device('cpu'))
        metrics[name] = metric.requires_grad_(False).eval()
    return metrics


def _scores(metric: torch.nn.Module, target: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image scores of ``target`` (detached: no graph), shape :math:`(N,)`."""
    return metric(target.detach(), ref).detach().reshape(-1)


@dataclass
class Recovery:
    r"""One objective's run over a batch of (start, reference) images.

    Attributes:
        psnr: PSNR to the reference after each step, step 0 (the start) included; shape
            :math:`(\text{steps} + 1, N)`.
        checkpoints: step -> metric name -> per-image scores, shape :math:`(N,)` (not step 0: the
            start is the same for every objective, :attr:`ObjectiveRun.start_scores`).
        result: the images after the last step, shape :math:`(N, 3, H, W)`.
        seconds: wall time of the optimisation, checkpoints included.
    """

    psnr: torch.Tensor
    checkpoints: dict[int, dict[str, torch.Tensor]]
    result: torch.Tensor
    seconds: float


def recover(objective: torch.nn.Module, starts: torch.Tensor, refs: torch.Tensor, steps: int, lr: float,
            evaluate: Mapping[str, torch.nn.Module], every: int) -> Recovery:
    """Minimise ``objective`` (negated when not ``lower_better``) over the pixels of ``starts``.

    Adam at ``lr``, halved every ``max(steps // 5, 1)`` steps, pixels clamped to [0, 1] after each
    step. Every metric of ``evaluate`` (which must hold ``'psnr'``) scores the images at step 0, every
    ``every`` steps and the last step; ``psnr`` also after every step (and at step 0).

    Shape:
        starts, refs: :math:`(N, 3, H, W)` in [0, 1].
    """
    began = time.perf_counter()
    sign = 1.0 if objective.lower_better else -1.0
    target = starts.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([target], lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(steps // 5, 1), gamma=0.5)
    psnr = [_scores(evaluate['psnr'], target, refs)]
    checkpoints = {}
    for step in range(1, steps + 1):
        optimiser.zero_grad()
        (sign * objective(target, refs).sum()).backward()
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            target.clamp_(0, 1)
        psnr.append(_scores(evaluate['psnr'], target, refs))
        if step % every == 0 or step == steps:
            checkpoints[step] = {name: _scores(metric, target, refs) for name, metric in evaluate.items()}
    return Recovery(torch.stack(psnr), checkpoints, target.detach().clone(), time.perf_counter() - began)


@dataclass
class ObjectiveRun:
    r"""Everything :func:`run_objective` measured.

    Attributes:
        photos, starts: the images of the batch are ``(start, photo)`` for start in ``starts``, photo
            in ``photos``, in that order (start-major).
        refs: the references repeated per start, shape :math:`(S \cdot P, 3, H, W)`.
        start_images: the starts, same shape.
        start_scores: metric name -> per-image scores of the starts, shape :math:`(S \cdot P,)`.
        recoveries: objective name -> :class:`Recovery`.
        failed: metric name -> why it could not run at this size (pyiqa's error).
        metrics: the metrics evaluated at the checkpoints, in order.
        lower_better: metric name -> its direction.
        load_before, load_after: the load averages (1/5/15 min) around the run.
        seconds: wall time of the whole run.
    """

    photos: tuple[str, ...]
    starts: tuple[str, ...]
    size: int
    steps: int
    lr: float
    every: int
    refs: torch.Tensor
    start_images: torch.Tensor
    start_scores: dict[str, torch.Tensor]
    recoveries: dict[str, Recovery]
    failed: dict[str, str]
    metrics: tuple[str, ...]
    lower_better: dict[str, bool]
    load_before: str
    load_after: str
    seconds: float

    def by_start(self, values: torch.Tensor) -> torch.Tensor:
        r"""Per-image ``values`` regrouped: shape :math:`(S \cdot P, ...)` to :math:`(S, P, ...)`."""
        return values.reshape(len(self.starts), len(self.photos), *values.shape[1:])


@contextmanager
def one_thread():
    """Run the block with one torch thread (the protocol's), then restore the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _usable(metrics: Mapping[str, torch.nn.Module], image: torch.Tensor) -> tuple[dict, dict[str, str]]:
    """(metrics that score ``image`` against itself, name -> first line of the error of the others)."""
    usable, failed = {}, {}
    for name, metric in metrics.items():
        try:
            _scores(metric, image, image)
            usable[name] = metric
        except (RuntimeError, ValueError, AssertionError) as error:
            failed[name] = f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}'
    return usable, failed


def run_objective(names: Sequence[str] | None = None, photos: Sequence[str] = PHOTOS, size: int = SIZE,
                  steps: int = STEPS, lr: float = LR, every: int = CHECK_EVERY,
                  say: Callable[[str], None] = print) -> ObjectiveRun:
    """Run the reference-recovery test for every metric of ``names`` (default
    :func:`default_objectives`; :data:`MEASURES` are evaluated even when not optimised), in one torch
    thread.

    Metrics that fail on ``size`` px images are reported in :attr:`ObjectiveRun.failed`, not run.
    """
    names = list(dict.fromkeys(names or default_objectives()))
    load_before, began = load_average(), time.perf_counter()
    with one_thread():
        loaded, failed = _usable(load_objectives(list(dict.fromkeys([*MEASURES, *names]))),
                                 reference(photos[0], size))
        refs = torch.cat([reference(name, size) for name in photos])
        starts = torch.cat([start_image(ref[None], start, SEED + i) for start in STARTS
                            for i, ref in enumerate(refs)])
        refs = refs.repeat(len(STARTS), 1, 1, 1)
        start_scores = {name: _scores(metric, starts, refs) for name, metric in loaded.items()}
        recoveries = {}
        for name in (n for n in names if n in loaded):
            torch.manual_seed(SEED)
            recoveries[name] = recover(loaded[name], starts, refs, steps, lr, loaded, every)
            final = recoveries[name].psnr[-1].mean().item()
            say(f'objective: {name} done in {recoveries[name].seconds:.0f} s (mean PSNR {final:.2f} dB)')
    return ObjectiveRun(tuple(photos), tuple(STARTS), size, steps, lr, every, refs, starts, start_scores,
                        recoveries, failed, tuple(loaded), {name: bool(m.lower_better) for name, m in loaded.items()},
                        load_before, load_average(), time.perf_counter() - began)
