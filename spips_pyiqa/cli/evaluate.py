"""python -m spips_pyiqa evaluate -opt OPTIONS.yml: BAPPS 2AFC / JND evaluation of any pyiqa FR metric.

Per BAPPS category: the 2AFC score and PLCC/SRCC/KRCC of the preference (2AFC val), the JND mAP
(JND val), and an average row per task. Writes OUT/bapps_<metric>.csv (raw values) and
OUT/bapps_<metric>.md (x100), and prints the table. The options file follows pyiqa's test options
(see options/test_spips.yml); the options below override it. Under torchrun each rank scores its
share of the batches and rank 0 prints and writes the one-process table.

The evaluation is :mod:`spips_pyiqa.evaluation.bapps` (callable from Python).
"""

import time
from pathlib import Path

from spips_pyiqa.cli.arguments import FAILURE, command_parser, fail, parse_or_exit_code, usage_error
from spips_pyiqa.evaluation.bapps import evaluate, load_options, write_results
from spips_pyiqa.evaluation.fr_metrics import UnknownMetricError, check_fr_metrics
from spips_pyiqa.utils.distributed import DistInfo, close_distributed, init_distributed
from spips_pyiqa.utils.weights import MissingWeightsError


def _parser():
    parser = command_parser('evaluate', __doc__)
    parser.add_argument('-opt', '--opt', type=Path, required=True, help='options YAML (e.g. options/test_spips.yml)')
    parser.add_argument('--metric', help='pyiqa full-reference metric name (overrides metric.name)')
    parser.add_argument('--bapps-root', type=Path, help='BAPPS folder (overrides dataroot_target)')
    parser.add_argument('--out', type=Path, help='output folder (default: results/NAME, NAME from the options)')
    parser.add_argument('--pretrained-model-path', type=Path, help='checkpoint passed to pyiqa.create_metric')
    return parser


def cli(argv: list[str]) -> int:
    """Entry point of evaluate: 0 done, 2 bad command line, 1 unusable options, data or metric."""
    parser = _parser()
    args = parse_or_exit_code(parser, argv)
    if isinstance(args, int):
        return args
    if args.metric is not None:
        try:
            check_fr_metrics([args.metric])
        except UnknownMetricError as error:
            return usage_error(parser, f'--metric: {error}')
    start = time.perf_counter()
    info = DistInfo()
    try:
        info = init_distributed('gloo')
        options = load_options(args.opt, args.metric, args.bapps_root, args.out, args.pretrained_model_path)
        scores = evaluate(options, info)
        written = write_results(scores, options) if info.is_main else None
    # ValueError: EvaluateError, CheckpointError, and images a metric refuses (e.g. SPIPS under 64x64)
    except (ValueError, MissingWeightsError, OSError) as error:
        close_distributed(wait=False)
        return fail(error) if info.is_main else FAILURE
    close_distributed()
    if written is None:  # not rank 0: rank 0 prints and writes
        return 0
    csv_path, md_path, markdown = written
    print(markdown)
    print(f'wrote {csv_path} and {md_path} in {time.perf_counter() - start:.1f} s')
    return 0
