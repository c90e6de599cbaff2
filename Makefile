# The two commands a fresh clone needs: `make run` and `make test`.
# Every install step lives here; pip (never uv/poetry) because torch lies on local disk for pip.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export DVC_STUDIO_OFFLINE := 1
export MPLBACKEND := Agg

.PHONY: setup run test lint format viz viz-build repro push pull readme clean-data mutate mutate-results device-wheels

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: setup
	$(BIN)/kedro run
	@echo; cat data/08_reporting/zeroshot_table.md; echo; cat reports/summary.md

test: setup
	$(BIN)/python -m pytest --durations=15

# Mutation score of the formula modules ([tool.mutmut] in pyproject.toml); ~30 min on 2 cores, not in CI.
# One torch thread per worker, MUTATE_JOBS workers; `make mutate-results` lists the survivors.
MUTATE_JOBS ?= 2
mutate: setup
	rm -rf mutants
	env -u PYTHONPATH OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(MUTATE_JOBS)
	$(BIN)/mutmut results

mutate-results:
	$(BIN)/mutmut results

# Lint and format check, as CI runs them; `make format` rewrites the tree the same way.
lint: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

viz: setup
	$(BIN)/kedro viz run --no-browser --include-hooks

viz-build: setup
	$(BIN)/kedro viz build --include-hooks

repro: setup
	$(BIN)/dvc repro

# Share artefacts through the DVC remote (.dvc/config; `dvc remote modify --local` points it elsewhere)
# instead of recomputing them: results differ slightly from one CPU model or GPU to another.
# The embedded benchmark's stages (dvc.yaml); a real-scale environment is a DVC project of its own,
# e.g. `cd envs/domainnet && dvc pull`.
push: setup
	$(BIN)/dvc push dvc.yaml

pull: setup
	$(BIN)/dvc pull dvc.yaml

readme:
	$(BIN)/python -m lipsum_ft.readme

# Wheels of what the device machines' image lacks, for benchmarks/device_check.sh (README, GPU check).
device-wheels: setup
	$(BIN)/python benchmarks/device_wheels.py

clean-data:
	rm -rf data/01_raw/digit_domains data/02_intermediate/* data/08_reporting/*
