"""The README's variants table is the variants table of ``spips_pyiqa/metric_configs.py``: a new
variant or a changed default heads version fails here until the README says so."""

from pathlib import Path

from spips_pyiqa.metric_configs import LABEL_FREE, LABEL_FREE_SUFFIX, VARIANTS

README = Path(__file__).resolve().parents[1] / 'README.md'
BACKBONES = {'alex': 'AlexNet', 'vgg': 'VGG16', 'squeeze': 'SqueezeNet 1.1'}


def _heads(version: str) -> str:
    return f'v{version} ' + ('label-free' if version == LABEL_FREE else 'human-trained')


def expected_table() -> str:
    """The Markdown table the README must hold, built from ``VARIANTS``."""
    lines = ['| name | backbone | groups | default heads |', '|---|---|---|---|']
    for name, variant in VARIANTS.items():
        lines.append(f'| `{name}` | {BACKBONES[variant.net]} | {" + ".join(variant.groups)} | {_heads(variant.heads)} |')
    twins = ', '.join(f'`{n}{LABEL_FREE_SUFFIX}`' for n, v in VARIANTS.items() if v.human_trained)
    lines.append(f'| {twins} | as above | as above | {_heads(LABEL_FREE)} |')
    return '\n'.join(lines)


def test_readme_variants_table_follows_metric_configs():
    assert expected_table() in README.read_text(), (
        'README.md, "Which variant to use": replace the variants table with\n' + expected_table())
