"""Golden SPIPS values: score, group distances and lambda of fixed scikit-image pairs per variant.

The table ``tests/golden/golden_values.json`` is written by ``tests/golden/make_golden.py``
(``make golden``) and tied to each variant's heads by their state-dict sha256. A code change that
moves any number by more than 1e-5 fails here; new heads fail with a request to regenerate the
table and review its diff.
"""

import importlib.util
import json
from functools import lru_cache
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / 'golden'
_spec = importlib.util.spec_from_file_location('make_golden', GOLDEN_DIR / 'make_golden.py')
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

TABLE = json.loads(make_golden.TABLE.read_text())
#: VGG16 at 512 px takes seconds on CPU: run with the slow tests only.
SLOW = {('spips-vgg', 'astronaut-512-jpeg')}


@lru_cache(maxsize=None)
def _model(variant: str):
    return make_golden.build(variant)


def _cases():
    for variant, entry in TABLE['variants'].items():
        for pair_name in entry['rows']:
            marks = [pytest.mark.slow] if (variant, pair_name) in SLOW else []
            yield pytest.param(variant, pair_name, marks=marks, id=f'{variant}-{pair_name}')


def test_table_covers_every_offline_variant_and_pair():
    assert tuple(TABLE['variants']) == make_golden.VARIANTS
    assert TABLE['pairs'] == {name: list(p) for name, p in make_golden.PAIRS.items()}
    for entry in TABLE['variants'].values():
        assert tuple(entry['rows']) == tuple(make_golden.PAIRS)


@pytest.mark.parametrize('variant, pair_name', list(_cases()))
def test_golden_values(variant, pair_name):
    model = _model(variant)
    expected_hash = TABLE['variants'][variant]['heads_sha256']
    actual_hash = make_golden.heads_sha256(model)
    if actual_hash != expected_hash:
        pytest.fail(
            f'the heads of {variant!r} changed (sha256 {actual_hash[:12]}..., table has '
            f'{expected_hash[:12]}...): if that is intended, regenerate the golden table with '
            f'`{make_golden.REGENERATE}` and review the diff of {make_golden.TABLE.name} before committing'
        )
    expected = TABLE['variants'][variant]['rows'][pair_name]
    actual = make_golden.golden_row(model, pair_name)
    atol = TABLE['atol']
    assert actual['lambda'].keys() == expected['lambda'].keys()
    assert actual['distances'].keys() == expected['distances'].keys()
    for group, value in expected['lambda'].items():
        assert actual['lambda'][group] == pytest.approx(value, abs=atol, rel=0), ('lambda', group)
    for group, value in expected['distances'].items():
        assert actual['distances'][group] == pytest.approx(value, abs=atol, rel=0), ('distance', group)
    assert actual['score'] == pytest.approx(expected['score'], abs=atol, rel=0)


def test_heads_hash_sees_every_weight_and_lambda():
    """A changed head weight or fusion logit changes the hash, so the table cannot go stale silently."""
    import torch

    model = make_golden.build('spips-no-semantic')
    original = make_golden.heads_sha256(model)
    with torch.no_grad():
        for parameter in model.quality.parameters():
            saved = parameter.detach().clone()
            last = parameter.view(-1)[-1]
            last.copy_(torch.nextafter(last, last + 1))  # the smallest change float32 can hold
            assert make_golden.heads_sha256(model) != original
            parameter.copy_(saved)
    assert make_golden.heads_sha256(model) == original
