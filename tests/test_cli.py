"""Every command of ``python -m spips_pyiqa``: plain-text help with every option explained, the
exit-code convention (0 done, 2 usage error, 1 failure; README "Command line"), ``--version`` and
the hint for a mistyped command.

The help check is generic (any command added to ``COMMANDS`` is covered): every parser a command
builds is captured while it prints ``--help``.
"""

import argparse
import re
from pathlib import Path

import pytest

import spips_pyiqa
from spips_pyiqa.__main__ import COMMANDS, main
from spips_pyiqa.cli.arguments import plain_text

REPO = Path(__file__).resolve().parents[1]
#: The documented convention (README "Command line"), as numbers: not the constants under test.
FAILURE, USAGE_ERROR = 1, 2
#: reStructuredText / Markdown a terminal would print literally: backticks, roles, bold, ``::``.
MARKUP = re.compile(r'`|:[a-z]+:`|\*\*|\S::\s*$', re.MULTILINE)


def _exit_code(argv) -> int:
    """``main(argv)``, or the code of a ``SystemExit`` a command raises instead of returning it."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


@pytest.fixture
def parsers(monkeypatch) -> list[argparse.ArgumentParser]:
    """The parsers that parse arguments while the test runs."""
    seen = []
    original = argparse.ArgumentParser.parse_known_args

    def recording(self, *args, **kwargs):
        seen.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_known_args', recording)
    return seen


@pytest.mark.parametrize('command', list(COMMANDS))
def test_help_is_plain_text_and_explains_every_option(command, parsers, capsys):
    assert _exit_code([command, '--help']) == 0
    out = capsys.readouterr().out
    assert out.startswith(f'usage: python -m spips_pyiqa {command}'), out[:200]
    markup = sorted({m.group(0) for m in MARKUP.finditer(out)})
    assert not markup, f'{command} --help prints markup {markup}:\n{out}'
    assert 'site-packages' not in out and str(REPO) not in out, f'{command} --help names a path of this machine'
    parser = next(p for p in parsers if p.prog == f'python -m spips_pyiqa {command}')
    undocumented = [a.option_strings or [a.dest] for a in parser._actions
                    if not isinstance(a, argparse._HelpAction) and not (a.help or '').strip()]
    assert not undocumented, f'{command}: options without help: {undocumented}'


def test_top_level_help_lists_every_command(capsys):
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS) and not MARKUP.search(out)


def test_plain_text_removes_sphinx_markup():
    text = ('See :func:`~spips_pyiqa.data.image_io.load_image` and :mod:`spips_pyiqa.metrics`: ``--out x.csv``, '
            '`a`, **bold**. Example::\n\n    run it')
    assert plain_text(text) == ('See load_image and spips_pyiqa.metrics: --out x.csv, a, bold. Example:\n\n'
                                '    run it')
    assert not MARKUP.search(plain_text(text))


def test_version(capsys):
    assert main(['--version']) == 0
    assert capsys.readouterr().out == f'spips-pyiqa {spips_pyiqa.__version__}\n'
    # one version: the wheel's metadata reads the same attribute
    assert 'version = attr: spips_pyiqa.__version__' in (REPO / 'setup.cfg').read_text()


def test_mistyped_command_names_the_closest_one(capsys):
    assert main(['scor']) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "error: unknown command 'scor'; did you mean 'score'?"
    assert main(['prepare-mso']) == USAGE_ERROR
    assert "did you mean 'prepare-mos'?" in capsys.readouterr().err
    assert main(['xyzzy']) == USAGE_ERROR
    err = capsys.readouterr().err
    assert "unknown command 'xyzzy'" in err and 'did you mean' not in err and 'commands:' in err
    assert main([]) == USAGE_ERROR


@pytest.mark.parametrize('command', list(COMMANDS))
def test_unknown_option_is_a_usage_error(command, capsys):
    assert _exit_code([command, '--no-such-option']) == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.startswith('usage: python -m spips_pyiqa') and 'error:' in err and 'Traceback' not in err


def _one_error_line(capsys, contains: str) -> None:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if 'error:' in line]
    assert len(errors) == 1 and contains in errors[0] and 'Traceback' not in err, err


# --- failures: the command line is fine, the run is not -> 1 -------------------------------------
def test_fetch_weights_failure(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    monkeypatch.setenv('TORCH_HOME', str(blocker / 'torch'))
    assert main(['fetch-weights']) == FAILURE
    _one_error_line(capsys, 'TORCH_HOME')


def test_demo_failure(tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    assert main(['demo', '--out', str(blocker)]) == FAILURE
    _one_error_line(capsys, str(blocker))


def test_prepare_bapps_failure(tmp_path, capsys):
    assert main(['prepare-bapps', str(tmp_path / 'absent')]) == FAILURE
    _one_error_line(capsys, 'absent')


def test_prepare_mos_failure_and_usage_errors(tmp_path, capsys):
    assert main(['prepare-mos', str(tmp_path), '--out', str(tmp_path / 'meta')]) == FAILURE
    _one_error_line(capsys, 'scores file not found')
    assert main(['prepare-mos']) == USAGE_ERROR
    _one_error_line(capsys, 'give a data folder ROOT or --pyiqa NAME')
    assert main(['prepare-mos', '--pyiqa', 'no-such-set']) == USAGE_ERROR
    _one_error_line(capsys, 'no-such-set')


def test_evaluate_failure_and_usage_error(tmp_path, capsys):
    assert main(['evaluate', '-opt', str(tmp_path / 'absent.yml')]) == FAILURE
    _one_error_line(capsys, 'absent.yml')
    assert main(['evaluate', '-opt', str(tmp_path / 'absent.yml'), '--metric', 'no-such-metric']) == USAGE_ERROR
    _one_error_line(capsys, 'no-such-metric')


def test_benchmark_failure_and_usage_errors(tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    assert main(['benchmark', '--only', 'speed', '--out', str(blocker)]) == FAILURE
    _one_error_line(capsys, str(blocker))
    assert main(['benchmark', '--metrics', 'psnr,no-such-metric', '--out', str(tmp_path)]) == USAGE_ERROR
    _one_error_line(capsys, 'no-such-metric')
    assert main(['benchmark', '--pyiqa-datasets', 'no-such-set', '--out', str(tmp_path)]) == USAGE_ERROR
    _one_error_line(capsys, 'no-such-set')
    assert _exit_code(['benchmark', '--only', 'nope']) == USAGE_ERROR


def test_benchmark_live_dev_default_is_relative_to_the_working_folder():
    from spips_pyiqa.benchmark.run import _parser

    default = _parser().get_default('live_dev')
    assert not default.is_absolute() and default.parts[-2:] == ('data', 'live_dev')
