"""Which faster CPU convolutions a backbone gets: measured per machine, or as the environment says.

``backbone_layout.use_faster_convolutions`` puts a faster twin (space-to-depth, planar, Winograd) in
place of one of AlexNet's convolutions only where it measured faster on this CPU. Here the timer is
replaced by a fake one, so the right choice is known; one test measures for real and checks what
must hold whatever is chosen.
"""

import pytest
import torch
from torch import nn

from spips_pyiqa import SPIPS
from spips_pyiqa.archs import backbone_layout
from spips_pyiqa.archs.backbone_layout import CPU_CONVOLUTIONS_ENV, FASTER_CONVOLUTIONS, TWIN_MAX_TIME_SHARE

TWINS = FASTER_CONVOLUTIONS['alex']
#: AlexNet's convolutions told apart by their input channels.
LAYER_OF_CHANNELS = {3: ('slice1', '0'), 64: ('slice2', '3'), 192: ('slice3', '6'), 384: ('slice4', '8'), 256: ('slice5', '10')}
#: The probe's input channels and side for each layer, from the probe's 256 px images.
PROBE_MAPS = {('slice1', '0'): (3, 256), ('slice2', '3'): (64, 31), ('slice3', '6'): (192, 15),
              ('slice4', '8'): (384, 15), ('slice5', '10'): (256, 15)}


def _kinds(model: SPIPS) -> dict:
    backbone = model.deep.backbone
    return {layer: type(getattr(getattr(backbone, layer[0]), layer[1])) for layer in TWINS}


@pytest.fixture
def fake_timer(monkeypatch):
    """Measured mode with a fresh cache; a plain convolution pass takes 1 s, a twin's ``shares[layer]`` s,
    the first (warm-up) pass of each 0 s.
    Returns ``shares`` (to fill) and the list of (layer, kind, input shape) measured."""
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, 'measured')
    monkeypatch.setattr(backbone_layout, '_MEASURED', {})
    shares, measured = {}, []

    def fake(conv: nn.Conv2d, x: torch.Tensor) -> float:
        layer = LAYER_OF_CHANNELS[conv.in_channels]
        twin = type(conv) is not nn.Conv2d
        entry = (layer, type(conv).__name__, tuple(x.shape))
        warm_up = entry not in measured  # 0 s: counted, it would decide every choice
        measured.append(entry)
        return 0.0 if warm_up else shares[layer] if twin else 1.0

    monkeypatch.setattr(backbone_layout, '_step_time', fake)
    return shares, measured


def test_measured_mode_puts_in_the_twins_that_pay_by_the_margin(fake_timer, monkeypatch):
    shares, measured = fake_timer
    shares.update({('slice1', '0'): 0.5, ('slice2', '3'): TWIN_MAX_TIME_SHARE + 0.01, ('slice3', '6'): TWIN_MAX_TIME_SHARE,
                   ('slice4', '8'): 1.4, ('slice5', '10'): 0.2})
    kinds = _kinds(SPIPS())
    paying = {layer for layer, share in shares.items() if share <= TWIN_MAX_TIME_SHARE}
    assert kinds == {layer: TWINS[layer] if layer in paying else nn.Conv2d for layer in TWINS}
    # each layer timed plain and as its twin, alternating, on the input it sees from the probe batch
    assert measured == [
        (layer, kind, (backbone_layout.PROBE_BATCH, PROBE_MAPS[layer][0], PROBE_MAPS[layer][1], PROBE_MAPS[layer][1]))
        for layer in TWINS for _ in range(backbone_layout.PROBE_REPEATS + 1) for kind in ('Conv2d', TWINS[layer].__name__)]
    measured.clear()
    shares.update({layer: 2.0 for layer in shares})  # measured once per process: no new timing, same choice
    probes = []
    monkeypatch.setattr(backbone_layout, '_layer_inputs', lambda *args: probes.append(1) or {})
    assert _kinds(SPIPS()) == kinds and measured == [] and probes == []  # nor the probe batch's forward


def test_faster_and_plain_modes_do_not_measure(fake_timer, monkeypatch):
    _, measured = fake_timer
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, 'faster')
    assert _kinds(SPIPS()) == TWINS
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, 'plain')
    assert set(_kinds(SPIPS()).values()) == {nn.Conv2d}
    assert measured == []


def test_unknown_mode_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, 'fast')
    with pytest.raises(ValueError, match=f"{CPU_CONVOLUTIONS_ENV}='fast': expected one of measured, faster, plain"):
        SPIPS()


def _built(mode: str, monkeypatch) -> tuple:
    """A trainable SPIPS built in ``mode`` from a seeded global RNG, and the RNG state after."""
    monkeypatch.setenv(CPU_CONVOLUTIONS_ENV, mode)
    torch.manual_seed(0)
    return SPIPS(tune=True), torch.random.get_rng_state()


def test_a_real_measurement_changes_no_score_no_rng_and_no_gradient(monkeypatch):
    """Whatever this machine measures: the global RNG advances as without measuring, trainable weights
    get no ``.grad`` from the timing, and the score equals that of plain convolutions to rounding."""
    monkeypatch.setattr(backbone_layout, '_MEASURED', {})
    measured, state = _built('measured', monkeypatch)
    assert len(backbone_layout._MEASURED) == len(TWINS)
    assert all(p.grad is None for p in measured.parameters())
    plain, plain_state = _built('plain', monkeypatch)
    assert torch.equal(state, plain_state)
    target, ref = torch.rand(2, 1, 3, 64, 80, generator=torch.Generator().manual_seed(0)).unbind(0)
    torch.testing.assert_close(measured(target, ref), plain(target, ref), rtol=1e-5, atol=1e-7)
