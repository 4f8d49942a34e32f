# Fresh-machine entry points (see README): `make demo` sets up and runs the main job,
# `make test` sets up and runs the tests. Both create ./.venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the builds that install from this machine kind's local disk.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: setup install weights demo test heads benchmark golden mutation

$(VENV)/.deps: setup.cfg
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PINS)
	$(PY) -m pip install -q $(TORCH_PINS) ".[test]"
	touch $@

setup: $(VENV)/.deps

# Non-editable install: the start-up hook (spips_pyiqa_autoload.pth) only ships in a real wheel.
install: setup
	$(PY) -m pip install -q --no-deps --no-build-isolation --force-reinstall .

weights: install
	$(PY) -m spips_pyiqa fetch-weights

demo: weights
	$(PY) -m spips_pyiqa demo

test: weights
	$(PY) -m pytest -q -rs

# v0.1 label-free heads, then v0.3 human-trained heads where the leaderboard protocol ships them
# (grouped scene CV on ../shared/data/live_dev + live_jpeg_dev)
heads: weights
	$(PY) -m spips_pyiqa.recipes.label_free_heads
	$(PY) -m spips_pyiqa.recipes.human_heads

benchmark: weights
	$(PY) -m spips_pyiqa benchmark --out benchmark_results/

# Golden SPIPS values (tests/golden/golden_values.json): rerun after new heads, review the diff.
golden: weights
	$(PY) tests/golden/make_golden.py

# Mutation testing (slow, not in CI; up to an hour per module on 2 cores): deliberate bugs of
# issue 12, then mutmut over the core modules; benchmark_results/mutation.md discusses the result.
mutation: weights
	$(PY) -m pip install -q ".[mutation]"
	$(PY) tests/mutation/deliberate_bugs.py > benchmark_results/mutation_deliberate_bugs.md
	$(PY) tests/mutation/run_mutmut.py --label after --max-minutes 60
	$(PY) tests/mutation/run_mutmut.py --report after
