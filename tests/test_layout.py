"""The package layout: each subpackage imports only what its ``__init__`` docstring allows, and no
import cycle exists, not even through imports inside functions (README, "Architecture")."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'spips_pyiqa'
TOP_LEVEL = {'metric_configs'}  # pure data, importable from everywhere
#: What each subpackage may import (itself always), as its __init__ docstring says.
ALLOWED = {
    'utils': set(),
    'metrics': set(),
    'archs': {'utils'},
    'losses': {'metrics'},
    'data': {'utils'},
    'models': {'archs', 'losses', 'metrics', 'data', 'utils'},
    'recipes': {'archs', 'data', 'metrics', 'models', 'losses', 'utils'},
    'evaluation': {'archs', 'data', 'metrics', 'models', 'losses', 'utils', 'recipes'},
    'cli': {'archs', 'data', 'metrics', 'models', 'losses', 'utils', 'recipes', 'evaluation'},
    'benchmark': {'archs', 'data', 'metrics', 'models', 'losses', 'utils', 'recipes', 'evaluation', 'cli'},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path, module_level_only: bool) -> set[str]:
    """``spips_pyiqa`` modules that ``path`` imports (``spips_pyiqa`` itself for the root package)."""
    tree = ast.parse(path.read_text())
    here = _module_name(path).split('.')
    package = here if path.name == '__init__.py' else here[:-1]
    found = set()
    for node in tree.body if module_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found |= {f'{base}.{a.name}' if f'{base}.{a.name}' in MODULES else base for a in node.names}
    return {name for name in found if name in MODULES}


MODULES = {_module_name(p) for p in PACKAGE.rglob('*.py')}


def _subpackage(module: str) -> str | None:
    """``'archs'`` for ``spips_pyiqa.archs.x``; ``None`` for the root package and top-level modules."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def test_every_module_is_in_a_subpackage_with_a_documented_role():
    loose = sorted(m for m in MODULES if m.count('.') == 1 and m.split('.')[1] not in ALLOWED)
    assert loose == ['spips_pyiqa.__main__', 'spips_pyiqa.metric_configs', 'spips_pyiqa.registration',
                     'spips_pyiqa.train']
    for sub in ALLOWED:
        doc = ast.get_docstring(ast.parse((PACKAGE / sub / '__init__.py').read_text())) or ''
        assert 'May import' in doc, f'{sub}/__init__.py must say what it may import'


def test_subpackages_import_only_downwards():
    wrong = []
    for path in PACKAGE.rglob('*.py'):
        module = _module_name(path)
        sub = _subpackage(module)
        if sub is None:
            continue
        for imported in _imports(path, module_level_only=False):
            target = _subpackage(imported)
            if target is None:  # the root package or a top-level module: commands and benchmark only
                fine = imported.split('.')[-1] in TOP_LEVEL or sub in ('cli', 'benchmark')
            else:
                fine = target == sub or target in ALLOWED[sub]
            if not fine:
                wrong.append(f'{module} imports {imported}')
    assert not wrong, '\n'.join(wrong)


def test_no_import_cycle_even_through_imports_inside_functions():
    graph = {m: _imports(p, module_level_only=False) for p in PACKAGE.rglob('*.py') for m in [_module_name(p)]}
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt == node or nxt not in graph:
                continue
            if state.get(nxt) == 1:
                raise AssertionError('import cycle: ' + ' -> '.join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
