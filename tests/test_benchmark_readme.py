"""benchmark_results/README.md is written by ``python -m spips_pyiqa benchmark`` from the tables in the
folder, so it cannot drift from them: the committed file is what the command writes for the
committed tables."""

from pathlib import Path

from spips_pyiqa.benchmark.run import TABLE_SOURCES, readme_text, write_readme

REPO = Path(__file__).resolve().parents[1]


def test_committed_readme_is_the_generated_one():
    committed = (REPO / 'benchmark_results' / 'README.md').read_text()
    assert committed == readme_text(REPO / 'benchmark_results'), (
        'benchmark_results/README.md differs from what the benchmark writes: regenerate it with '
        "python -c \"from pathlib import Path; from spips_pyiqa.benchmark.run import write_readme; "
        "write_readme(Path('benchmark_results'))\"")


def test_readme_lists_each_table_with_its_command_and_module(tmp_path):
    (tmp_path / 'scoring_throughput.md').write_text('### Scoring throughput: x\n\n| a |\n|---|\n| 1 |\n')
    (tmp_path / 'speed_cpu.md').write_text('### Speed on CPU\n')
    (tmp_path / 'RESULTS.md').write_text('### not a table\n')
    text = write_readme(tmp_path).read_text()
    rows = [line for line in text.splitlines() if line.startswith('| [')]
    assert rows == [
        '| [`speed_cpu`](speed_cpu.md) | Speed on CPU | `benchmark --only speed` | `spips_pyiqa/benchmark/speed.py` |',
        '| [`scoring_throughput`](scoring_throughput.md) | Scoring throughput: x | `benchmark --only scoring` | '
        '`spips_pyiqa/benchmark/scoring.py` |',
    ]
    assert all((REPO / module).is_file() for _, _, module in TABLE_SOURCES)
