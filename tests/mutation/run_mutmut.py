"""Mutation testing of the SPIPS core with mutmut 2 (``make mutation``; not part of ``make test``).

For each core module, mutmut mutates the source of a scratch copy of the repository (never this
checkout) and runs the module's non-slow tests (``-x``, stop at the first failure) against every
mutant. The result per module (killed / survived / timeout) and the diff of every survivor go to
``benchmark_results/mutation/<label>.json``; ``benchmark_results/mutation.md`` discusses them.

``--rev REV`` runs the same selection on a git revision (e.g. the commit before the golden and
per-equation tests) to measure what new tests added; test files absent at REV are dropped.

Usage (repository root; slow: every mutant starts pytest + torch, ~5-15 s each)::

    python tests/mutation/run_mutmut.py --label after
    python tests/mutation/run_mutmut.py --label before --rev 7399b86 --modules quality_heads traditional_maps
"""

import argparse
import ast
import difflib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / 'benchmark_results' / 'mutation'
FORK_RUNNER = Path(__file__).resolve().parent / 'fork_runner.py'
PRAGMA = '  # pragma: no mutate'
ARCHS = 'spips_pyiqa/archs'
#: module -> (source file, non-slow test files that exercise it, pytest -k selection or None,
#: functions to mutate or None for the whole file). Restricting the functions keeps a run within
#: an hour on a shared 2-core machine; lines outside them get ``# pragma: no mutate`` in the copy.
MODULES = {
    'quality_heads': (f'{ARCHS}/quality_heads.py',
                      ['tests/test_equations.py', 'tests/test_golden.py', 'tests/test_spips_arch.py'], 'not 512', None),
    'traditional_maps': (f'{ARCHS}/traditional_maps.py',
                         ['tests/test_equations.py', 'tests/test_golden.py', 'tests/test_spips_arch.py'], 'not 512',
                         ('gaussian_kernel_1d', 'ssim_components', 'psnr_distance_map', '_flipped', '_resized', '_resized_mean',
                          '_first_scale', '_coarse_scales', 'traditional_maps', 'traditional_means', '_all_maps',
                          '_first_scale_maps', 'cat_channels')),
    'deep_features': (f'{ARCHS}/deep_features.py', ['tests/test_equations.py', 'tests/test_spips_arch.py'], None,
                      ('normalize_channels', 'forward')),
    'checkpoint': (f'{ARCHS}/checkpoint.py', ['tests/test_checkpoints.py'], None, None),
    'bapps_scores': ('spips_pyiqa/metrics/bapps_scores.py', ['tests/test_bapps_scores.py'], None, None),
}


def export_tree(rev, destination: Path) -> None:
    """The working tree (tracked + untracked, not ignored) or revision ``rev`` into ``destination``."""
    if rev:
        archive = subprocess.run(['git', 'archive', rev], cwd=REPO, check=True, capture_output=True).stdout
        tarfile.open(fileobj=io.BytesIO(archive)).extractall(destination, filter='data')
        return
    names = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard'], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in names:
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)


def _pragma_text(text: str, functions) -> str:
    """``text`` with every line outside the named functions and module constants marked
    ``# pragma: no mutate`` (mutmut skips those lines)."""
    lines = text.splitlines()
    tree = ast.parse(text)
    keep = set()
    for node in ast.walk(tree):  # the functions, and the module's constants (which they use)
        if (isinstance(node, ast.FunctionDef) and node.name in functions) or (
            node in tree.body and isinstance(node, (ast.Assign, ast.AnnAssign))
        ):
            keep.update(range(node.lineno - 1, node.end_lineno))
    return '\n'.join(
        line if i in keep or not line.strip() or line.rstrip().endswith('\\') else f'{line}{PRAGMA}'
        for i, line in enumerate(lines)
    ) + '\n'


def mutant_changes(text: str, ids) -> dict:
    """``{id: changed lines}`` of mutmut's mutants ``ids`` of the (pragma-marked) source ``text``.

    Rebuilt offline (mutmut numbers a fresh run's mutants in enumeration order): ``mutmut show``
    must not run while mutmut is testing, it rewrites the cache from the mutated file on disk.
    """
    from mutmut import Context, list_mutations, mutate

    mutations = list_mutations(Context(source=text, filename='module.py', dict_synonyms=[]))
    changes = {}
    for mutant_id in ids:
        context = Context(source=text, mutation_id=mutations[int(mutant_id) - 1], filename='module.py', dict_synonyms=[])
        mutated, _ = mutate(context)
        diff = difflib.unified_diff(text.splitlines(), mutated.splitlines(), lineterm='', n=0)
        changes[str(mutant_id)] = [
            line.replace(PRAGMA, '') for line in diff if line[:1] in '+-' and line[:3] not in ('+++', '---')
        ]
    return changes


def _source_text(source: str, rev, functions) -> str:
    if rev and rev != 'working tree':
        text = subprocess.run(['git', 'show', f'{rev}:{source}'], cwd=REPO, check=True, capture_output=True,
                              text=True).stdout
    else:
        text = (REPO / source).read_text()
    return _pragma_text(text, functions) if functions else text


def _statuses(copy: Path) -> dict:
    with sqlite3.connect(copy / '.mutmut-cache') as db:
        rows = db.execute('SELECT m.id, m.status, l.line_number FROM Mutant m JOIN Line l ON m.line = l.id').fetchall()
    return {mutant_id: (status, line + 1) for mutant_id, status, line in rows}


def run_module(name: str, rev, python: str, max_minutes: float = 60) -> dict:
    source, tests, selection, functions = MODULES[name]
    with tempfile.TemporaryDirectory(prefix=f'spips-mutmut-{name}-') as scratch:
        copy = Path(scratch)
        export_tree(rev, copy)
        tests = [t for t in tests if (copy / t).is_file()]
        if functions:
            (copy / source).write_text(_pragma_text((copy / source).read_text(), functions))
        env = {**os.environ, 'PYTHONPATH': str(copy), 'OMP_NUM_THREADS': '1', 'PYTHONDONTWRITEBYTECODE': '1'}
        # one warm process imports torch/pyiqa once and forks a pytest per mutant (fork_runner.py)
        sock = str(copy / '.fork_runner.sock')
        server = subprocess.Popen([python, str(FORK_RUNNER), 'serve', sock], cwd=copy, env=env)
        try:
            while not Path(sock).exists():
                if server.poll() is not None:
                    raise RuntimeError('fork_runner server failed to start')
                time.sleep(0.5)
            runner = (f"{python} {FORK_RUNNER} run {sock} -- -x -q -m 'not slow' -p no:cacheprovider "
                      f"{' '.join(tests)}")
            if selection:
                runner += f" -k '{selection}'"
            try:  # a time limit: what is untested by then is counted as such, not as killed
                subprocess.run(
                    [python, '-m', 'mutmut', 'run', '--paths-to-mutate', source, '--tests-dir', 'tests',
                     '--runner', runner, '--simple-output', '--no-progress'],
                    cwd=copy, env=env, stdout=subprocess.DEVNULL, timeout=max_minutes * 60,
                )
            except subprocess.TimeoutExpired:
                pass
        finally:
            server.kill()
        statuses = _statuses(copy)
        survivors = {
            mutant_id: {'status': status, 'line': line}
            for mutant_id, (status, line) in sorted(statuses.items())
            if status in ('bad_survived', 'bad_timeout', 'ok_suspicious')
        }
    counts = {}
    for status, _ in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    killed = counts.get('ok_killed', 0)
    tested = sum(v for k, v in counts.items() if k not in ('untested', 'skipped'))
    tested_ids = sorted(i for i, (status, _) in statuses.items() if status not in ('untested', 'skipped'))
    return {'tested': tested_ids, 'source': source, 'untested_at_time_limit': counts.get('untested', 0), 'functions': functions, 'tests': tests, 'selection': selection, 'rev': rev or 'working tree',
            'counts': counts, 'score': killed / tested if tested else None, 'survivors': survivors}


def _change_text(change) -> str:
    removed = [f'`{c[1:].strip()}`' for c in change if c.startswith('-')]
    added = [f'`{c[1:].strip()}`' for c in change if c.startswith('+')]
    return ' / '.join(removed) + (' → ' + ' / '.join(added) if added else ' removed')


def _tested_ids(result) -> set:
    """Ids of the tested mutants (runs without the list: mutmut tests in id order, a prefix)."""
    if 'tested' in result:
        return set(result['tested'])
    counts = result['counts']
    return set(range(1, 1 + sum(v for k, v in counts.items() if k not in ('untested', 'skipped'))))


def report(labels) -> str:
    """Markdown: per module and label, the score and counts; then every survivor's diff."""
    runs = {label: json.loads((OUT / f'{label}.json').read_text()) for label in labels
            if (OUT / f'{label}.json').is_file()}
    lines = ['| module | run | tests | killed | survived | timeout | untested | score (killed / tested) |',
             '|---|---|---|---|---|---|---|---|']
    for label, results in runs.items():
        for name, r in results.items():
            c = r['counts']
            scope = f' ({", ".join(r["functions"])} + constants)' if r.get('functions') else ''
            score = f'{r["score"]:.2f}' if r['score'] is not None else 'n/a'
            lines.append(f'| `{r["source"]}`{scope} | {label} ({r["rev"]}) | {", ".join(t.split("/")[-1] for t in r["tests"])} '
                         f'| {c.get("ok_killed", 0)} | {c.get("bad_survived", 0)} | {c.get("bad_timeout", 0)} '
                         f'| {c.get("untested", 0)} | {score} |')
    labels = list(runs)
    if len(labels) == 2:  # time-limited runs test different prefixes: compare on the common mutants
        first, second = (runs[label] for label in labels)
        lines += ['', f'On the mutants tested by both {labels[0]} and {labels[1]} (same source, same numbering):', '',
                  f'| module | tested by both | killed ({labels[0]}) | killed ({labels[1]}) |', '|---|---|---|---|']
        for name in sorted(first.keys() & second.keys()):
            tested = _tested_ids(first[name]) & _tested_ids(second[name])
            killed = [len(tested - {int(i) for i in run[name]['survivors']}) for run in (first, second)]
            lines.append(f'| {name} | {len(tested)} | {killed[0]} | {killed[1]} |')
    for label, results in runs.items():
        for name, r in results.items():
            if r['survivors']:
                lines += ['', f'Survivors, {name} ({label}):', '']
                changes = mutant_changes(_source_text(r['source'], r['rev'], r.get('functions')), r['survivors'])
                lines += [f'- #{i} line {v["line"]}: {_change_text(changes[str(i)])}' for i, v in r['survivors'].items()]
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--label', help='output name, e.g. before / after')
    parser.add_argument('--rev', help='git revision to test instead of the working tree')
    parser.add_argument('--max-minutes', type=float, default=60, help='time limit per module')
    parser.add_argument('--modules', nargs='+', choices=list(MODULES), default=list(MODULES))
    parser.add_argument('--report', nargs='+', metavar='LABEL',
                        help='only write benchmark_results/mutation_scores.md from these runs')
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    if args.report:
        (OUT.parent / 'mutation_scores.md').write_text(report(args.report))
        return 0
    path = OUT / f'{args.label}.json'
    for name in args.modules:
        result = run_module(name, args.rev, sys.executable, args.max_minutes)
        print(f'{name}: score {result["score"]:.3f} {result["counts"]}', file=sys.stderr)
        results = json.loads(path.read_text()) if path.is_file() else {}  # re-read: runs may overlap
        results[name] = result
        path.write_text(json.dumps(results, indent=1) + '\n')  # after each module: partial runs count
    return 0


if __name__ == '__main__':
    sys.exit(main())
