"""Every dotted ``spips_pyiqa.*`` name and every ``spips_pyiqa/...py`` or ``tests/...py`` path that the
package's strings (docstrings, messages) and the Markdown documentation mention exists: a renamed
module or function cannot leave a stale reference behind, not even in an error message."""

import ast
import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = ('README.md', 'CONTRIBUTING.md', 'benchmark_results/README.md')
DOTTED = re.compile(r'\bspips_pyiqa(?:\.[A-Za-z_]\w*)+')
PATH = re.compile(r'(?<![\w/.])(?:spips_pyiqa|tests)/[\w/]*\w\.py\b')


def _texts() -> list[tuple[str, str]]:
    """(where, text): every string constant of the package, every line of the documents."""
    found = []
    for path in sorted((REPO / 'spips_pyiqa').rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((f'{path.relative_to(REPO)}:{node.lineno}', node.value))
    for name in DOCUMENTS:
        if (REPO / name).is_file():
            found += [(f'{name}:{i}', line) for i, line in enumerate((REPO / name).read_text().splitlines(), 1)]
    return found


def resolves(dotted: str) -> bool:
    """Whether ``a.b.c.d`` is a module, or an attribute chain of the longest importable module prefix."""
    parts = dotted.split('.')
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module('.'.join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


TEXTS = _texts()


def test_the_search_sees_the_package_and_the_readme():
    names = {name for _, text in TEXTS for name in DOTTED.findall(text)}
    assert {'spips_pyiqa.load_image', 'spips_pyiqa.archs.checkpoint.save_heads'} <= names
    assert any(where.startswith('README.md') for where, _ in TEXTS)


def test_resolves_tells_existing_from_stale_names():
    assert resolves('spips_pyiqa.archs.checkpoint.save_heads') and resolves('spips_pyiqa.train')
    assert resolves('spips_pyiqa.archs.spips_arch.SPIPS.forward')
    assert not resolves('spips_pyiqa.checkpoint.save_heads')  # a module that moved
    assert not resolves('spips_pyiqa.archs.checkpoint.save_head')  # a function renamed


def test_every_dotted_name_exists():
    stale = sorted({f'{where}: {name}' for where, text in TEXTS for name in DOTTED.findall(text)
                    if not resolves(name)})
    assert not stale, 'references to names that do not exist:\n' + '\n'.join(stale)


def test_every_file_path_exists():
    stale = sorted({f'{where}: {path}' for where, text in TEXTS for path in PATH.findall(text)
                    if not (REPO / path).is_file()})
    assert not stale, 'references to files that do not exist:\n' + '\n'.join(stale)


@pytest.mark.parametrize('document', DOCUMENTS)
def test_documents_link_only_to_files_that_exist(document):
    path = REPO / document
    if not path.is_file():
        pytest.skip(f'no {document}')
    links = re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', path.read_text())
    local = [link for link in links if '://' not in link and not link.startswith('mailto:')]
    missing = sorted({link for link in local if not (path.parent / link).exists()})
    assert not missing, f'{document} links to missing files: {missing}'
