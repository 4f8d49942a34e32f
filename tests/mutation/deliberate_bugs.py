"""Apply each deliberate bug of issue 12 to a scratch copy of the repository and run the tests
that should catch it (the non-slow tests of whole files; named tests even when slow); print a
Markdown table (``make mutation`` writes it to ``benchmark_results/mutation_deliberate_bugs.md``).

Each bug is one literal source edit (the script refuses to run if the original text is not found
exactly once, so a refactor cannot make a bug silently vanish). A bug is *caught* when at least one
selected test fails with it applied; the unmodified copy must pass the same selection.

Run from the repository root: ``python tests/mutation/deliberate_bugs.py`` (a few minutes).
"""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_mutmut import REPO, export_tree  # noqa: E402  (a sibling script, not a package)

# (name, file, original text, buggy text, tests to run)
BUGS = [
    ('lambda reordered (fusion zips reversed weights)', 'spips_pyiqa/archs/quality_heads.py',
     'zip(self.weights, distances)', 'zip(self.weights.flip(0), distances)',
     ['tests/test_equations.py', 'tests/test_golden.py']),
    ('lambda reordered (group order of the fusion)', 'spips_pyiqa/metric_configs.py',
     "GROUPS = ('traditional', 'perceptual', 'semantic')", "GROUPS = ('perceptual', 'traditional', 'semantic')",
     ['tests/test_equations.py', 'tests/test_golden.py']),
    ('Inf weights accepted (only NaN refused)', 'spips_pyiqa/archs/checkpoint.py',
     'and not torch.isfinite(value).all()', 'and torch.isnan(value).any()',
     ['tests/test_checkpoints.py']),
    ('NaN/Inf load_state_dict pre-hook not registered', 'spips_pyiqa/archs/spips_arch.py',
     'module.register_load_state_dict_pre_hook(refuse_non_finite_state)', 'pass',
     ['tests/test_checkpoints.py']),
    ('l*cs at every MS-SSIM scale (eq. 3)', 'spips_pyiqa/archs/traditional_maps.py',
     'term = luminance * contrast_structure if scale == MS_SSIM_SCALES - 1 else contrast_structure',
     'term = luminance * contrast_structure',
     ['tests/test_equations.py']),
    ('cs at every MS-SSIM scale (eq. 3)', 'spips_pyiqa/archs/traditional_maps.py',
     'term = luminance * contrast_structure if scale == MS_SSIM_SCALES - 1 else contrast_structure',
     'term = contrast_structure',
     ['tests/test_equations.py']),
    ('PSNR clamp removed (eq. 1)', 'spips_pyiqa/archs/traditional_maps.py',
     '1.0 - (psnr / PSNR_MAX_DB).clamp(0.0, 1.0)', '1.0 - psnr / PSNR_MAX_DB',
     ['tests/test_equations.py']),
    ('SSIM/MS-SSIM clamp removed (eqs. 2-3)', 'spips_pyiqa/archs/traditional_maps.py',
     'return 1.0 - similarity.clamp(0.0, 1.0)', 'return 1.0 - similarity',
     ['tests/test_equations.py']),
    ('MSE floor removed (eq. 1)', 'spips_pyiqa/archs/traditional_maps.py',
     'torch.log10(local_mse.clamp_min(MSE_FLOOR))', 'torch.log10(local_mse)',
     ['tests/test_spips_arch.py', 'tests/test_as_loss.py']),
    ('--metric ignored by the score CLI', 'spips_pyiqa/evaluation/folder_scoring.py',
     'pyiqa.create_metric(name, device=device)', "pyiqa.create_metric('spips', device=device)",
     ['tests/test_score_cli_real.py']),
    # score: resume by content, outputs over inputs, foreign files, several metrics, pairing, maps
    ('resume ignores changed inputs (stamps not compared)', 'spips_pyiqa/evaluation/folder_scoring.py',
     'if row.stamp == stamps[index]:', 'if True:', ['tests/test_score_resume.py']),
    ('outputs over inputs not checked', 'spips_pyiqa/evaluation/folder_scoring.py',
     '            refuse_outputs_over_inputs(outputs, {', '            (lambda *_: None)(outputs, {',
     ['tests/test_score_resume.py']),
    ('outputs inside an input folder allowed', 'spips_pyiqa/evaluation/output_guard.py',
     'if path.is_dir() and target.is_relative_to(path):', 'if False:', ['tests/test_score_resume.py']),
    ('any CSV at --out taken for a scores file', 'spips_pyiqa/evaluation/scores_file.py',
     'accepts=lambda names: directions_in(names) is not None', 'accepts=lambda names: True',
     ['tests/test_score_resume.py']),
    ('--overwrite ignored', 'spips_pyiqa/evaluation/folder_scoring.py',
     '        if overwrite:\n            reader.discard()', '        if False:\n            reader.discard()',
     ['tests/test_score_resume.py']),
    ('a rerun recomputes every metric', 'spips_pyiqa/evaluation/folder_scoring.py',
     'needed = [m for m in metrics if m not in known.get(index, {})]', 'needed = list(metrics)',
     ['tests/test_score_metrics.py']),
    ('references of a batch reordered', 'spips_pyiqa/data/pair_loader.py',
     "torch.stack([getattr(pair, side) for pair in group])",
     "torch.stack([getattr(pair, side) for pair in (group[::-1] if side == 'ref' else group)])",
     ['tests/test_score_metrics.py']),
    ('no-reference metrics accepted', 'spips_pyiqa/evaluation/fr_metrics.py',
     'if name in known:', 'if name in DEFAULT_CONFIGS:', ['tests/test_score_metrics.py']),
    ('bootstrap resamples one image', 'spips_pyiqa/evaluation/method_comparison.py',
     'size=(resamples, n))', 'size=(resamples, 1))', ['tests/test_score_metrics.py']),
    ('methods ranked ignoring the direction of the metric', 'spips_pyiqa/evaluation/method_comparison.py',
     'sign = 1.0 if lower_better(metric) else -1.0', 'sign = 1.0', ['tests/test_score_metrics.py']),
    ('target suffix not cut before pairing', 'spips_pyiqa/data/pairing.py',
     'stem = path.stem[: len(path.stem) - len(target_suffix)]', 'stem = path.stem',
     ['tests/test_score_pairing_maps.py']),
    ('unmatched names skipped without a word', 'spips_pyiqa/data/pairing.py',
     'if unmatched and not allow_unmatched:', 'if False:', ['tests/test_score_pairing_maps.py']),
    ('--map-range ignored', 'spips_pyiqa/data/image_io.py',
     'low, high = value_range if value_range is not None else (0.0, float(values.max()))',
     'low, high = (0.0, float(values.max()))', ['tests/test_score_pairing_maps.py']),
    ('result lines printed over the progress bar', 'spips_pyiqa/cli/score.py',
     "tqdm.write('\\t'.join(", "print('\\t'.join(", ['tests/test_score_pairing_maps.py']),
    ('p0/p1 swapped in 2AFC scoring', 'spips_pyiqa/metrics/bapps_scores.py',
     '(d0 < d1) * (1.0 - h) + (d1 < d0) * h', '(d0 < d1) * h + (d1 < d0) * (1.0 - h)',
     ['tests/test_bapps_scores.py']),
    ('failures exit 2 like usage errors (one exit-code convention)', 'spips_pyiqa/cli/arguments.py',
     'SUCCESS, FAILURE, USAGE_ERROR = 0, 1, 2', 'SUCCESS, FAILURE, USAGE_ERROR = 0, 2, 2',
     ['tests/test_cli.py']),
    ('Sphinx roles left in --help', 'spips_pyiqa/cli/arguments.py',
     "text = _ROLE.sub(lambda m: m[2].split('.')[-1] if m[1] else m[2], text)", 'pass',
     ['tests/test_cli.py']),
    ('MOS labels not negated (MOS read as DMOS)', 'spips_pyiqa/evaluation/mos.py',
     '(1.0 if labels_lower_better else -1.0)', '1.0',
     ['tests/test_evaluation_mos.py']),
    ('p0/p1 swapped in BAPPS evaluation', 'spips_pyiqa/evaluation/bapps.py',
     "'d0': ('distA_img', 'ref_img'), 'd1': ('distB_img', 'ref_img')",
     "'d0': ('distB_img', 'ref_img'), 'd1': ('distA_img', 'ref_img')",
     ['tests/test_evaluate.py']),
    ('score from map means even with a negative traditional weight (ReLU of eq. 11 ignored)',
     'spips_pyiqa/archs/spips_arch.py',
     'if not signs.nonnegative:\n            return None', 'if False:\n            return None',
     ['tests/test_speedups_equal.py']),
    ('zero-weight traditional maps skipped in training (their weights get no gradient)',
     'spips_pyiqa/archs/spips_arch.py',
     'needed = (True,) * TRADITIONAL_CHANNELS if self.training else signs.nonzero[0]',
     'needed = signs.nonzero[0]',
     ['tests/test_speedups_equal.py', 'tests/test_compile.py']),
    ('weight signs not re-read after load_state_dict (stale needed maps after loading other heads)',
     'spips_pyiqa/archs/quality_heads.py',
     'self.register_load_state_dict_post_hook(_refresh_after_load)', 'pass',
     ['tests/test_compile.py']),
    ('weight signs not re-read after clamp_weights',
     'spips_pyiqa/archs/quality_heads.py',
     '            conv.weight.clamp_(min=0)\n        self.refresh_weight_signs()',
     '            conv.weight.clamp_(min=0)',
     ['tests/test_compile.py']),
    ('in-place weight edits not noticed eagerly (version counter not watched)',
     'spips_pyiqa/archs/quality_heads.py',
     'if not torch.compiler.is_compiling() and self._signs_stale():',
     'if False:',
     ['tests/test_compile.py']),
    ('compiled path trusts stale weight signs (no in-graph check)',
     'spips_pyiqa/archs/spips_arch.py',
     "            _assert_signs_hold('traditional', [head.convs[0].weight], needed)", '            pass',
     ['tests/test_compile.py']),
    ('NaN/Inf accepted under torch.compile', 'spips_pyiqa/archs/input_checks.py',
     "torch._assert_async(torch.isfinite(image).all(), f'{name} contains NaN or Inf values')", 'pass',
     ['tests/test_compile.py']),
    ('mean of an upsampled MS-SSIM map taken as the plain mean of the coarse map (eq. 3)',
     'spips_pyiqa/archs/traditional_maps.py',
     'if distance.shape[-2:] == tuple(size):\n        return distance.mean(dim=(2, 3))',
     'if True:\n        return distance.mean(dim=(2, 3))',
     ['tests/test_speedups_equal.py']),
    ('channel norm by mean instead of sum (eqs. 4-5)', 'spips_pyiqa/archs/deep_features.py',
     '(features * features).sum(dim=1, keepdim=True)', '(features * features).mean(dim=1, keepdim=True)',
     ['tests/test_equations.py']),
    ("SPIPS's features written into torchvision's checkpoints/ folder", 'spips_pyiqa/utils/weights.py',
     "OWN_DIR = 'spips_pyiqa'", "OWN_DIR = 'checkpoints'",
     ['tests/test_weights.py']),
    ("earlier files under torchvision's names kept", 'spips_pyiqa/utils/weights.py',
     "                path.unlink()\n                log.warning(", "                log.warning(",
     ['tests/test_weights.py']),
    ('no fetch on first use', 'spips_pyiqa/utils/weights.py',
     'fetch_weights(root, targets=[FEATURES_TARGETS[net]])', "raise FetchError('not fetched')",
     ['tests/test_weights.py']),
    ('SPIPS_PYIQA_NO_FETCH ignored', 'spips_pyiqa/utils/weights.py',
     "if os.environ.get(NO_FETCH_ENV, '') not in ('', '0'):", 'if False:',
     ['tests/test_weights.py']),
    ('fetch without the file lock (torchrun ranks download twice)', 'spips_pyiqa/utils/weights.py',
     'with filelock.FileLock(root / LOCK_NAME):', 'with open(os.devnull):',
     ['tests/test_weights.py']),
    ("paths given to create_metric('spips') read by pyiqa's 8-bit reader", 'spips_pyiqa/registration.py',
     '        read_inputs_with_load_image(module)', '        pass',
     ['tests/test_pyiqa_inputs.py']),
    ('grouped folds deal items, not scenes (a scene split across folds)', 'spips_pyiqa/metrics/grouped_cv.py',
     "return [np.array([i for i in subset if fold_of[groups[i]] == f], dtype=int) for f in range(k)]",
     "return [np.array([i for n, i in enumerate(subset) if n % k == f], dtype=int) for f in range(k)]",
     ['tests/test_human_heads.py::test_grouped_folds_never_split_a_scene_and_hold_several_scenes']),
    ("pooled 'plain PLCC' is the logistic-fit one", 'spips_pyiqa/metrics/grouped_cv.py',
     "return Pooled(c.n, c.srcc, c.plain_plcc, c.plcc if fit else float('nan'), c.krcc)",
     "return Pooled(c.n, c.srcc, c.plcc if fit else float('nan'), c.plcc if fit else float('nan'), c.krcc)",
     ['tests/test_human_heads.py::test_plain_plcc_is_pyiqas_calculate_plcc_and_differs_from_the_fitted_one']),
    ('admissible and ship rule look at SRCC only', 'spips_pyiqa/recipes/recipe_selection.py',
     "STATISTICS = (('SRCC', 'srcc'), ('plain PLCC', 'plcc'))", "STATISTICS = (('SRCC', 'srcc'),)",
     ['tests/test_human_heads.py::test_choice_and_ship_rule_refuse_a_recipe_that_wins_srcc_but_loses_plain_plcc']),
    ('95% interval of the best instead of one standard error', 'spips_pyiqa/recipes/recipe_selection.py',
     'se = float(np.std(values, ddof=1))', 'se = criterion(summaries[best]) - float(np.quantile(values, 0.025))',
     ['tests/test_human_heads.py::test_one_standard_error_rule_learns_where_the_95_percent_interval_rule_keeps_label_free']),
    ('distortion folds refuse beyond a fixed 0.01, not beyond their noise', 'spips_pyiqa/recipes/recipe_selection.py',
     'for kind, gain in fold_gains.items() for name, attr in STATISTICS if gain[attr].high < 0]',
     'for kind, gain in fold_gains.items() for name, attr in STATISTICS if gain[attr].estimate < -0.01]',
     ['tests/test_human_heads.py::test_a_distortion_fold_refuses_a_recipe_only_where_it_loses_beyond_its_own_noise']),
    ('ship rule asks for a gain beyond the noise in both statistics', 'spips_pyiqa/recipes/recipe_selection.py',
     'if not any(gain[a].low > 0 for _, a in STATISTICS):', 'if not all(gain[a].low > 0 for _, a in STATISTICS):',
     ['tests/test_human_heads.py::test_ship_rule_ships_a_clear_plain_plcc_gain_with_srcc_unchanged_and_refuses_an_srcc_loss_beyond_the_margin']),
    ('prior grid never extended past an open edge', 'spips_pyiqa/recipes/human_heads.py',
     'while extra := extend_grid(choice.best, [e.recipe for e in evaluations]):', 'while extra := []:',
     ['tests/test_human_heads.py::test_a_grid_edge_optimum_is_flagged_and_the_grid_extended_until_it_is_not']),
    ('nested choice made on every scene (its test scenes too)', 'spips_pyiqa/recipes/human_heads.py',
     'choice, _ = select(start, features, candidates, train, protocol, inner=True)',
     'choice, _ = select(start, features, candidates, np.arange(len(features.badness)), protocol, inner=True)',
     ['tests/test_human_heads.py::test_nested_procedure_never_sees_its_test_scenes']),
    ('bootstrap ignores the strata', 'spips_pyiqa/metrics/grouped_cv.py',
     "layer[groups[i]] = '' if strata is None else strata[i]", "layer[groups[i]] = ''",
     ['tests/test_human_heads.py::test_stratified_scene_bootstrap_keeps_each_strata_size_and_whole_scenes']),
    ('feature cache keyed by image names, not their bytes', 'spips_pyiqa/recipes/heads_features.py',
     'digest.update(path.relative_to(root).as_posix().encode() + file_sha256(path).encode())',
     'digest.update(path.relative_to(root).as_posix().encode())',
     ['tests/test_human_heads.py::test_feature_cache_is_reused_only_while_its_inputs_are_unchanged']),
    # issue 24: a faster loss, the same score
    ('deep means: gradient of the mean misses its factor 2', 'spips_pyiqa/archs/deep_features.py',
     'grad = grad * (2.0 / (difference.shape[-2] * difference.shape[-1]))',
     'grad = grad * (1.0 / (difference.shape[-2] * difference.shape[-1]))',
     ['tests/test_speedups_equal.py::test_deep_means_give_the_score_of_the_maps']),
    ('deep means taken although a deep head has a negative weight', 'spips_pyiqa/archs/spips_arch.py',
     'if not all(head.weight_signs().nonnegative for head in heads.values()):', 'if False:',
     ['tests/test_speedups_equal.py::test_deep_means_give_the_score_of_the_maps']),
    ('space-to-depth convolution: input padded one row short', 'spips_pyiqa/archs/backbone_layout.py',
     'bottom = (out_h - 1 + blocks) * stride - x.shape[-2] - pad_h',
     'bottom = (out_h - 1 + blocks) * stride - x.shape[-2] - pad_h - 1',
     ['tests/test_speedups_equal.py::test_space_to_depth_convolution_equals_conv2d']),
    ('space-to-depth convolution: kernel blocks in the wrong order', 'spips_pyiqa/archs/backbone_layout.py',
     'weight.permute(0, 1, 3, 5, 2, 4)', 'weight.permute(0, 1, 5, 3, 2, 4)',
     ['tests/test_speedups_equal.py::test_space_to_depth_convolution_equals_conv2d']),
    ('tiled filter: plane groups put back in the wrong order', 'spips_pyiqa/archs/gaussian_filter.py',
     'for group in planes.split(per_group)]', 'for group in planes.split(per_group)][::-1]',
     ['tests/test_speedups_equal.py::test_filter_and_its_adjoint_equal_replicate_convolution']),
    ('image sizes left to dynamo under torch.compile (symbolic after a second size)', 'spips_pyiqa/archs/input_checks.py',
     '        _static_image_size(target)\n        _static_image_size(ref)', '        pass',
     ['tests/test_compile.py::test_inductor_loss_takes_a_second_image_size']),
    ('separable products: right-hand matrix not transposed', 'spips_pyiqa/archs/axis_products.py',
     'along_rows = x.reshape(-1, width) @ right.T', 'along_rows = x.reshape(-1, width) @ right',
     ['tests/test_speedups_equal.py::test_filter_and_its_adjoint_equal_replicate_convolution']),
    ('map means: height and width weights swapped', 'spips_pyiqa/archs/traditional_maps.py',
     'torch.matmul(torch.matmul(distance, cols), rows)', 'torch.matmul(torch.matmul(distance, rows), cols)',
     ['tests/test_speedups_equal.py::test_traditional_means_equal_means_of_the_maps']),
    # issue 24, compiled forward: Winograd products as oneDNN grouped convolutions with packed weights
    ('Winograd in turns: each turn of tile rows reads one input row short', 'spips_pyiqa/archs/winograd.py',
     'windows = images[:, first * m : last * m + a - m]', 'windows = images[:, first * m : last * m + a - m - 1]',
     ['tests/test_speedups_equal.py::test_winograd_in_turns_equals_conv2d']),
    ('Winograd input gradient served the forward products\' packed weights', 'spips_pyiqa/archs/winograd.py',
     "('input gradient', lambda: _swapped(kernel, kernel_out))", "('forward', lambda: _swapped(kernel, kernel_out))",
     ['tests/test_speedups_equal.py::test_winograd_in_turns_equals_conv2d']),
    ('packed weight kept after the weight was edited in place', 'spips_pyiqa/archs/prepacked.py',
     ' or entry.version != owner._version', '',
     ['tests/test_prepacked.py']),
    ('one packed weight for every input size', 'spips_pyiqa/archs/prepacked.py',
     'key = (name, size)', 'key = (name, ())',
     ['tests/test_prepacked.py']),
    ('filter operator returns a layout other than the one it declares', 'spips_pyiqa/archs/gaussian_filter.py',
     '(x.contiguous() if adjoint else x, kernel).contiguous()', '(x.contiguous() if adjoint else x, kernel)',
     ['tests/test_speedups_equal.py::test_filter_operator_passes_torch_library_checks']),
]


def _run_tests(copy: Path, tests) -> tuple:
    """(passed?, names of failed tests) of the selection in ``copy`` (see ``marks``)."""
    env = {**os.environ, 'PYTHONPATH': str(copy), 'OMP_NUM_THREADS': '1'}
    # whole files: their non-slow tests; a selection of named tests (file::test) runs them, slow or not
    marks = [] if all('::' in test for test in tests) else ['-m', 'not slow']
    result = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-x', *marks, '-p', 'no:cacheprovider', '-rfE', *tests],
        cwd=copy, env=env, capture_output=True, text=True,
    )
    failed = re.findall(r'^(?:FAILED|ERROR) (.+?)(?: - .*)?$', result.stdout, flags=re.M)
    return result.returncode == 0, failed, result.stdout[-2000:]


def main() -> int:
    rows = ['| deliberate bug | file | tests run (non-slow ones of whole files) | caught by (first failure) |', '|---|---|---|---|']
    missed = 0
    with tempfile.TemporaryDirectory(prefix='spips-bugs-') as scratch:
        copy = Path(scratch)
        export_tree(None, copy)
        baseline_checked = set()
        for name, file, original, buggy, tests in BUGS:
            path = copy / file
            source = path.read_text()
            if source.count(original) != 1:
                raise SystemExit(f'{file}: the text for "{name}" is not there exactly once: update BUGS')
            if tuple(tests) not in baseline_checked:
                passed, failed, _ = _run_tests(copy, tests)
                if not passed:
                    raise SystemExit(f'the unmodified selection {tests} fails ({failed}): fix the tests first')
                baseline_checked.add(tuple(tests))
            path.write_text(source.replace(original, buggy))
            try:
                passed, failed, tail = _run_tests(copy, tests)
            finally:
                path.write_text(source)
            caught = ', '.join(f'`{f.split("::", 1)[-1]}`' for f in failed[:2]) if not passed else '**NOT CAUGHT**'
            missed += passed
            rows.append(f'| {name} | `{file}` | {", ".join(t.split("/")[-1] for t in tests)} | {caught} |')
            print(rows[-1], file=sys.stderr)
    print('\n'.join(rows))
    return 1 if missed else 0


if __name__ == '__main__':
    sys.exit(main())
