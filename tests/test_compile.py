"""SPIPS under ``torch.compile``: one graph, the eager score and gradient, and decisions that follow
the weights and the mode without reading them in the forward pass.

Which traditional maps the score needs is read from the head weights when they change
(``GroupHead.weight_signs``), never per call. The fast tests check that decision after every route
that changes the weights or the mode, eagerly and with the compiled code path
(``torch.compiler.is_compiling()`` patched to True: the same Python that dynamo traces, run eagerly,
in-graph asserts included). The slow tests compile for real: ``torch._dynamo.explain`` and
``backend='aot_eager'`` on CPU, 64x64 images.
"""

import copy

import pytest
import torch

from spips_pyiqa import SPIPS
from spips_pyiqa.archs.input_checks import check_image_pair
from spips_pyiqa.archs.quality_heads import GroupHead
from spips_pyiqa.data.distortions import distort, photo

SIZE = 64


@pytest.fixture(scope='module')
def zero_weights():
    """The v0.2 heads (loadable by version): four traditional weights are exactly 0."""
    model = SPIPS(heads_version='0.2')
    assert model.quality.heads['traditional'].weight_signs().nonzero[0] == (False,) * 4 + (True,) * 3
    return model


@pytest.fixture(scope='module')
def all_weights():
    """The label-free (v0.1) heads: all seven traditional weights are positive."""
    model = SPIPS(heads_version='0.1')
    assert all(model.quality.heads['traditional'].weight_signs().nonzero[0])
    return model


@pytest.fixture(scope='module')
def pair():
    ref = photo('astronaut', SIZE)
    return distort(ref, 'noise', 2), ref


@pytest.fixture
def compiled_path(monkeypatch):
    """Run the branches dynamo traces (``torch.compiler.is_compiling()`` is True while tracing)."""
    monkeypatch.setattr(torch.compiler, 'is_compiling', lambda: True)


@pytest.fixture
def weight_reads(monkeypatch):
    """Counts reads of the head weights (``GroupHead.refresh_weight_signs`` calls)."""
    calls = []
    original = GroupHead.refresh_weight_signs
    monkeypatch.setattr(GroupHead, 'refresh_weight_signs', lambda head: calls.append(head) or original(head))
    return calls


def score_and_gradients(score, model, target, ref):
    """``score(target, ref)``, its gradient to the target and, in training, to the traditional
    weights (in eval mode skipped maps leave their weights without one)."""
    target = target.clone().requires_grad_(True)
    inputs = [target] + ([model.quality.heads['traditional'].convs[0].weight] if model.training else [])
    value = score(target, ref)
    return [value.detach(), *torch.autograd.grad(value.sum(), inputs)]


def full_maps_score(model):
    """The score from the full traditional maps (the ``return_map`` path): no decision to take."""
    return lambda target, ref: model.quality(model.distance_maps(*check_image_pair(target, ref)))[0]


def assert_same(model, target, ref):
    """Score and gradients of ``model`` equal those from the full maps (float rounding apart; a
    skipped map that weighs is off by its weight times its mean)."""
    ours = score_and_gradients(model, model, target, ref)
    for a, b in zip(ours, score_and_gradients(full_maps_score(model), model, target, ref)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5 * b.abs().max().item())


# ----------------------------------------------------------- decisions follow the weights and the mode
def _load_spips(model, other):
    model.load_state_dict(other.state_dict())


def _load_heads(model, other):
    model.quality.load_state_dict(other.quality.state_dict())


def _load_one_head(model, other):
    model.quality.heads['traditional'].load_state_dict(other.quality.heads['traditional'].state_dict())


def _negative_then_clamp(model, other):
    with torch.no_grad():
        model.quality.heads['traditional'].convs[0].weight.copy_(-other.quality.heads['traditional'].convs[0].weight)
    model.quality.clamp_weights()  # all 0 now: no traditional map weighs


def _reset(model, other):
    model.quality.reset()


ROUTES = {'SPIPS.load_state_dict': _load_spips, 'quality.load_state_dict': _load_heads,
          'head.load_state_dict': _load_one_head, 'clamp_weights': _negative_then_clamp, 'reset': _reset}


@pytest.mark.parametrize('route', list(ROUTES))
@pytest.mark.parametrize('start', ['zero_weights', 'all_weights'])
def test_decision_is_taken_when_weights_change_not_in_forward(request, pair, weight_reads, route, start):
    """After each route that changes the weights, the forward pass reads no weight and its score
    and gradients equal those from the full maps; after the route back, also on the compiled path."""
    model = copy.deepcopy(request.getfixturevalue(start))
    other = request.getfixturevalue('all_weights' if start == 'zero_weights' else 'zero_weights')
    model(*pair)
    ROUTES[route](model, other)
    weight_reads.clear()
    with torch.no_grad():
        model(*pair)
    assert weight_reads == [], f'the forward pass read the weights after {route}'
    assert_same(model, *pair)
    ROUTES[route](model, other if route == 'clamp_weights' else request.getfixturevalue(start))
    with pytest.MonkeyPatch.context() as patch:  # and back, on the code dynamo traces: no re-read
        patch.setattr(torch.compiler, 'is_compiling', lambda: True)
        assert_same(model, *pair)


@pytest.mark.parametrize('path', ['eager', 'compiled'])
def test_eval_to_train_gives_every_traditional_weight_its_gradient(request, zero_weights, pair, path):
    """Switching modes on a model already used in eval mode (where zero-weight maps are skipped):
    in training every traditional weight, the zero ones too, gets its gradient; back in eval mode
    the skipped maps are skipped again."""
    if path == 'compiled':
        request.getfixturevalue('compiled_path')
    model = copy.deepcopy(zero_weights)
    model(*pair)
    model.train()
    _, _, grad = score_and_gradients(model, model, *pair)
    assert (grad.flatten()[:4] != 0).all()
    assert_same(model, *pair)
    model.eval()
    assert model.traditional_channels_needed() == [False] * 4 + [True] * 3
    assert_same(model, *pair)


def test_in_place_edits_are_seen_eagerly(zero_weights, pair, weight_reads):
    """An in-place edit (new version), a new Parameter, ``.data =`` (new storage): re-read once at
    the next call; ``.data`` edits in place after an explicit refresh."""
    model = copy.deepcopy(zero_weights)
    with torch.no_grad():
        model(*pair)  # a copy's parameters have new storage: every head is re-read once, here
    conv = model.quality.heads['traditional'].convs[0]
    edits = [
        lambda: conv.weight.add_(0.5),
        lambda: setattr(conv, 'weight', torch.nn.Parameter(torch.full_like(conv.weight, 0.2))),
        lambda: setattr(conv.weight, 'data', torch.zeros_like(conv.weight).index_fill_(1, torch.tensor([1]), 1.0)),
    ]
    for edit in edits:
        with torch.no_grad():
            edit()
        weight_reads.clear()
        with torch.no_grad():
            model(*pair)
        assert len(weight_reads) == 1
        assert_same(model, *pair)
    conv.weight.data.mul_(-1)  # no version change: needs the refresh the docstring asks for
    model.quality.heads['traditional'].refresh_weight_signs()
    assert not model.quality.heads['traditional'].weight_signs().nonnegative
    assert_same(model, *pair)


def test_compiled_path_refuses_weights_edited_behind_its_back(compiled_path, zero_weights, pair):
    """Under compilation the signs are not re-read: a zero weight made non-zero without a refresh
    is a clear error from the in-graph check, not a score that ignores it."""
    model = copy.deepcopy(zero_weights)
    model(*pair)
    model.quality.heads['traditional'].convs[0].weight.data[0, 0] = 0.5
    with pytest.raises(RuntimeError, match=r"traditional head's weights changed .*refresh_weight_signs"):
        model(*pair)
    model.quality.heads['traditional'].refresh_weight_signs()
    assert_same(model, *pair)
    model.quality.heads['semantic'].convs[1].weight.data[0, 3] = -0.5  # the deep maps' means no longer do
    with pytest.raises(RuntimeError, match=r"semantic head's weights changed .*heads\['semantic'\]"):
        model(*pair)
    model.quality.heads['semantic'].refresh_weight_signs()
    assert_same(model, *pair)


def test_compiled_path_refuses_nan_without_a_host_read(compiled_path, zero_weights, pair):
    target, ref = (x.clone() for x in pair)
    target[0, 1, 5, 7] = float('nan')
    with pytest.raises(RuntimeError, match='target contains NaN or Inf values'):
        zero_weights(target, ref)
    ref[0, 0, 0, 0] = float('inf')
    with pytest.raises(RuntimeError, match='ref contains NaN or Inf values'):
        zero_weights(pair[0], ref)


def test_meta_device_needs_no_weight_values(zero_weights):
    """On the meta device (shape inference, deferred initialisation) there are no values to read:
    every map is assumed to weigh, with the full maps, and score and gradient have their shapes."""
    model = copy.deepcopy(zero_weights).to('meta')
    target = torch.empty(2, 3, SIZE, SIZE, device='meta', requires_grad=True)
    score = model(target, torch.empty(2, 3, SIZE, SIZE, device='meta'))
    assert score.shape == (2, 1) and not model.quality.heads['traditional'].weight_signs().nonnegative
    score.sum().backward()
    assert target.grad.shape == target.shape


# ----------------------------------------------------------------------------- real compilation
@pytest.mark.slow
def test_forward_is_one_graph_in_eval_and_as_loss(zero_weights, pair):
    """0 graph breaks (pyiqa's lpips and dists trace as one graph too)."""
    target, ref = pair
    for name, inputs in {'eval': (target, ref), 'loss': (target.clone().requires_grad_(True), ref)}.items():
        torch._dynamo.reset()
        explanation = torch._dynamo.explain(zero_weights)(*inputs)
        reasons = [reason.reason.splitlines()[0] for reason in explanation.break_reasons]
        assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), (name, reasons)
    torch._dynamo.reset()


@pytest.mark.slow
def test_compiled_score_and_gradient_equal_eager(zero_weights, all_weights, pair):
    """``backend='aot_eager'``: score and gradient to the target to 1e-5, also after loading heads
    with other zero weights (a recompile, not a stale decision), and NaN refused by the graph."""
    model = copy.deepcopy(zero_weights)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend='aot_eager')
    for heads in (zero_weights, all_weights):
        model.load_state_dict(heads.state_dict())
        ours, theirs = score_and_gradients(compiled, model, *pair), score_and_gradients(heads, heads, *pair)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-5)
        torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=1e-5)
    target = pair[0].clone()
    target[0, 0, 3, 3] = float('nan')
    with pytest.raises(RuntimeError, match='target contains NaN or Inf values'):
        compiled(target.requires_grad_(True), pair[1])
    torch._dynamo.reset()


@pytest.mark.slow
def test_recompiles_when_the_signs_change_only(zero_weights, all_weights, pair):
    """A clamp that leaves the signs as they were keeps the graph (a compiled training step with
    ``clamp_weights`` does not recompile); loading heads with other zero weights recompiles."""
    from torch._dynamo.testing import CompileCounter

    model = copy.deepcopy(zero_weights)
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = torch.compile(model, backend=counter)
    with torch.no_grad():
        compiled(*pair)
        model.quality.clamp_weights()
        compiled(*pair)
        assert counter.frame_count == 1
        model.load_state_dict(all_weights.state_dict())
        torch.testing.assert_close(compiled(*pair), all_weights(*pair), rtol=0, atol=1e-7)
        assert counter.frame_count == 2
    torch._dynamo.reset()


@pytest.mark.parametrize('loss', [False, True])
def test_a_second_batch_size_does_not_recompile(monkeypatch, all_weights, loss):
    """With the batch dimension marked dynamic (what the benchmark's ``BatchDynamic`` does), batches
    of 2, then 3 and 5 images reuse one graph, as a metric and as a loss: nothing in the forward
    depends on the batch size. CPU chunks of 2 images, which eagerly split a batch of 3 (under
    ``torch.compile`` the whole batch is one graph). A counting backend: dynamo only."""
    from torch._dynamo.testing import CompileCounter

    from spips_pyiqa.archs import traditional_maps as tm
    from spips_pyiqa.benchmark.speed import BatchDynamic

    monkeypatch.setattr(tm, 'CPU_CHUNK_PIXELS', 2 * SIZE * SIZE)
    torch._dynamo.reset()
    counter = CompileCounter()
    compiled = BatchDynamic(all_weights, backend=counter)
    ref = photo('astronaut', SIZE)
    for batch in (2, 3, 5):
        target = torch.cat([distort(ref, 'noise', 1 + i % 2) for i in range(batch)])
        refs = ref.expand(batch, -1, -1, -1)
        with torch.set_grad_enabled(loss):
            target.requires_grad_(loss)
            score = compiled(target, refs)
            torch.testing.assert_close(score, all_weights(target, refs), rtol=0, atol=1e-6)
    assert counter.frame_count == 1
    torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_loss_does_not_recompile_for_a_second_batch_size(all_weights):
    """With inductor as a loss, 8 then 3 images of 128 px: one graph. Inductor specialises the code
    of a sum on its length (above 4096 terms it sums in chunks): summed over batch x pixels, as the
    head weights' gradient of a product + channel sum is (31 x 31 x 8 terms at layer 1, 31 x 31 x 3
    next), that length changes class with the batch; the compiled heads are 1x1 convolutions.
    (The backbone's convolutions choose their kernel by batch size, below 16 images or not: a
    batch crossing 16 recompiles once.)"""
    from torch._dynamo.utils import counters

    from spips_pyiqa.benchmark.speed import BatchDynamic

    torch._dynamo.reset()
    compiled = BatchDynamic(copy.deepcopy(all_weights), backend='inductor')
    ref = photo('astronaut', 2 * SIZE)
    graphs = counters['stats']['unique_graphs']
    for batch in (8, 3):
        target = torch.cat([distort(ref, 'noise', 1 + i % 2) for i in range(batch)]).requires_grad_(True)
        compiled(target, ref.expand(batch, -1, -1, -1)).mean().backward()
    assert counters['stats']['unique_graphs'] - graphs == 1
    torch._dynamo.reset()


# ------------------------------------------------------------------------- compiled speed rows
def test_speed_table_gains_compiled_rows(monkeypatch):
    """Rows ``NAME (compiled)`` as a metric and as a loss, their compile time in a note, the metric
    given left eager; no such rows (and a note why) without a compiler. A counting backend and
    ``psnr`` stand in for inductor and SPIPS, which take minutes to compile."""
    import pyiqa
    from torch._dynamo.testing import CompileCounter

    from spips_pyiqa.benchmark import speed

    monkeypatch.setattr(speed, 'SIZES', ((64, 2),))
    original, backend = speed.compiled_metric, CompileCounter()
    monkeypatch.setattr(speed, 'compiled_metric', lambda metric: original(metric, backend=backend))
    metric = pyiqa.create_metric('psnr', device='cpu')
    torch._dynamo.reset()
    (table,), raw = speed.speed_tables({'psnr': metric}, torch.device('cpu'), 1, False, 'test', compiled=('psnr',))
    assert [row['metric'] for row in table.rows] == ['psnr', 'psnr (compiled)', 'psnr (loss)', 'psnr (compiled) (loss)']
    assert all(row['64px b2 img/s'] > 0 for row in table.rows)
    assert any('psnr (compiled) (loss) 64px:' in note for note in table.notes)
    assert backend.frame_count == 2  # one graph as a metric, one as a loss
    assert not isinstance(metric.net, torch._dynamo.eval_frame.OptimizedModule)
    monkeypatch.setattr(speed, 'compiler_missing', lambda device: 'InvalidCxxCompiler: no g++')
    (table,), _ = speed.speed_tables({'psnr': metric}, torch.device('cpu'), 1, False, 'test', compiled=('psnr',))
    assert [row['metric'] for row in table.rows] == ['psnr', 'psnr (loss)']
    assert any('no compiler here (InvalidCxxCompiler: no g++)' in note for note in table.notes)
    torch._dynamo.reset()


def test_cold_compile_table_gives_ratios_to_lpips_and_recompiles():
    """One row per compiled metric as a metric and as a loss, the first-call time relative to
    lpips' (of the same kind), graphs and whether the second batch size recompiled; errors stated.
    A stand-in measurement: the real one compiles with inductor in subprocesses for minutes."""
    from spips_pyiqa.benchmark import speed

    def measure(name, size, batch, second_batch, loss):
        assert (size, batch, second_batch) == (speed.COLD_COMPILE_SIZE, speed.COLD_COMPILE_BATCH, speed.SECOND_BATCH)
        if name == 'dists':
            return {'error': 'InvalidCxxCompiler'}
        seconds = {'spips': 30.0, 'lpips': 10.0}[name] * (2 if loss else 1)
        return {'compile_s': seconds, 'graphs': 1, 'second_batch_s': 1.0, 'recompiled': name == 'spips' and loss}

    table = speed.cold_compile_table(['spips', 'lpips', 'dists'], 'test', measure)
    rows = {row['metric']: row for row in table.rows}
    assert list(rows) == ['spips (compiled)', 'lpips (compiled)', 'dists (compiled)',
                          'spips (compiled) (loss)', 'lpips (compiled) (loss)', 'dists (compiled) (loss)']
    assert rows['spips (compiled)']['x lpips'] == rows['spips (compiled) (loss)']['x lpips'] == 3.0
    assert rows['lpips (compiled) (loss)']['x lpips'] == 1.0
    assert rows['spips (compiled)']['b3 recompiled'] == 'no' and rows['spips (compiled) (loss)']['b3 recompiled'] == 'yes'
    assert 'error: InvalidCxxCompiler' in str(rows['dists (compiled)'].values())


@pytest.mark.slow
def test_compiled_profile_table_groups_each_metrics_operators():
    """The compiled calls by operator group: inductor for real (64 px, 2 images, one call each).
    LPIPS runs no matrix product and has 1x1 (lin layer) convolutions; SPIPS's filters are products
    and its Winograd convolutions run inside their operator; both run the backbone's convolutions and
    inductor's kernels, profiled by name even
    where the same graphs were compiled before without profiling (the speed tables' run, whose
    cached code has none); the groups add up to the total and the last column is the difference
    from the first metric."""
    import pyiqa

    from spips_pyiqa.benchmark.speed import COMPILED_GROUPS, compiled_metric, compiled_profile_table, speed_inputs

    torch._dynamo.reset()
    metrics = {name: pyiqa.create_metric(name, device='cpu') for name in ('lpips', 'spips')}
    with torch.no_grad():  # compiled before, without kernel profiling, as the speed tables do
        for metric in metrics.values():
            compiled_metric(metric)(*speed_inputs(SIZE, 2))
    table = compiled_profile_table(metrics, SIZE, 2, calls=1)
    rows = {row['operator group']: row for row in table.rows}
    assert list(rows) == [label for label, _ in COMPILED_GROUPS] + ['everything else', 'total']
    lpips, spips = 'lpips (compiled) ms', 'spips (compiled) ms'
    backbone, winograd, lin, products, generated = (label for label, _ in COMPILED_GROUPS)
    assert rows[products][lpips] == 0 and rows[products][spips] > 0
    assert rows[winograd][lpips] == 0 and rows[winograd][spips] > 0  # 64 px: 3x3 maps, one tile each
    assert rows[backbone][lpips] > 0 and rows[backbone][spips] > 0 and rows[lin][lpips] > 0
    assert rows[generated][lpips] > 0 and rows[generated][spips] > 0  # inductor's kernels, by name
    for column in (lpips, spips):
        parts = sum(row[column] for label, row in rows.items() if label != 'total')
        assert parts == pytest.approx(rows['total'][column])
    for row in rows.values():
        assert row['spips (compiled) - lpips (compiled) ms'] == pytest.approx(row[spips] - row[lpips])
    torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_loss_takes_a_second_image_size(all_weights):
    """A compiled loss fed a second image size: dynamo then makes the sizes symbolic (automatic
    dynamic shapes), and inductor could not lower the tiled filter's whole-block arithmetic on them
    (``InductorError: cannot determine truth value of Relational``). ``check_image_pair``
    specialises the graph on the image size instead: the second size compiles a graph of its own,
    with the eager score and gradient. Batch 1; 64 px filters with banded matrices, 100 px tiled
    (``filter_method``), so both compiled filters are compared with eager ones."""
    model = copy.deepcopy(all_weights)
    torch._dynamo.reset()
    compiled = torch.compile(model, backend='inductor')
    for size in (SIZE, 100):
        ref = photo('astronaut', size)
        target = distort(ref, 'noise', 2)
        ours, theirs = score_and_gradients(compiled, model, target, ref), score_and_gradients(model, model, target, ref)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=1e-5)
        # inductor's fused float32 kernels round differently: up to 1.2e-5 at a few border pixels
        torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=5e-5)
    torch._dynamo.reset()
