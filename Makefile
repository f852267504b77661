# λ-GRPO companion. The two commands a new user needs: `make reproduce` and `make test` (`make help` lists all).
# Both build the virtual environment first when it is missing (or when requirements.txt changed).
#   VENV=/path/to/env                           use an existing environment as it is (no set-up)
#   SCALE=paper [SET="use_vllm=true …"] [LAUNCH="$(VENV)/bin/accelerate launch --config_file configs/accelerate/ddp.yaml"]
#                                               the paper's runs: preset switches for every run, multi-GPU launcher
.DELETE_ON_ERROR:
.SUFFIXES:
SHELL := /bin/bash

SCALE ?= small
VENV ?= .venv
BOOT_PYTHON ?= $(shell command -v python3.11 || command -v python3)
PY := $(VENV)/bin/python
# CPU scales: JOBS worker processes share the runs. Paper scale: one run at a time, on every GPU of LAUNCH (a plain
# python process by default; `accelerate launch …` for several GPUs), with SET's FIELD=VALUE preset switches.
ifeq ($(SCALE),paper)
JOBS ?= 1
else
JOBS ?= 2
endif
LAUNCH ?= $(PY)
# SCALE=paper: each run in a process of its own started by LAUNCH, each evaluation in another (IN_PROCESS=1: all in
# one process, for a CPU dry run).
RUNS_FLAGS := $(if $(filter paper,$(SCALE)),--launch "$(LAUNCH)" $(if $(IN_PROCESS),--in-process))
SET ?=
# REPORT_TO=tensorboard (or wandb): every run's metrics also go there (events in <run>/tensorboard/); none keeps the
# committed results compact.
REPORT_TO ?= none
SETS := $(foreach s,$(SET),--set $(s))
# ALLOW_CPU=1: a CPU dry run of SCALE=paper (with SET="mirror=… max_steps=2 …"); preflight then only warns about CUDA.
# NPROC: the processes LAUNCH starts (preflight checks that every preset's batch splits over them).
PREFLIGHT_FLAGS := $(SETS) $(if $(ALLOW_CPU),--allow-cpu) $(if $(NPROC),--num-processes $(NPROC))
NB_DIR ?= notebooks
EXEC ?= results/executed/$(SCALE)
RESULTS ?= $(CURDIR)/results/$(SCALE)
LIB := $(shell find paper_lib -name '*.py')
NOTEBOOKS := $(sort $(wildcard $(NB_DIR)/[0-9][0-9]_*.ipynb))
EXECUTED := $(patsubst $(NB_DIR)/%,$(EXEC)/%,$(NOTEBOOKS))
# Notebooks 02-05 read the runs: they go stale when a run changes (RUNS_STAMP is touched only then).
RUN_READERS := $(filter $(foreach n,02 03 04 05,$(EXEC)/$(n)_%),$(EXECUTED))
REPORT_NB := $(filter $(EXEC)/07_%,$(EXECUTED))
RUNS_STAMP := $(RESULTS)/runs/.changed

# Nothing at the smoke and small scales may touch a hub; the paper scale needs it (and preflight checks it).
ifneq ($(SCALE),paper)
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
endif
export PYTHONHASHSEED := 0

ifeq ($(VENV),.venv)
ENV := $(VENV)/.installed
else
ENV := $(VENV)/.paper_lib-checked
endif

.PHONY: help setup setup-gpu preflight reproduce runs bench gpu-check test test-slow test-all lab lint clean-smoke

help:  ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

reproduce: ## every run not yet finished, then every notebook in order (papermill); SCALE=smoke|small|paper

# Stops within seconds, writing nothing, when the scale needs what this machine lacks (SCALE=paper: CUDA, hub).
preflight: $(ENV) ## stop within seconds if this machine lacks what SCALE needs
	$(PY) -m paper_lib.paper_scale.preflight --scale $(SCALE) $(PREFLIGHT_FLAGS)

# The GPU environment for SCALE=paper (vLLM, PEFT, DeepSpeed): a separate venv; use it with VENV=.venv-gpu.
setup-gpu:
	$(BOOT_PYTHON) -m venv .venv-gpu && .venv-gpu/bin/pip install -r requirements-gpu.txt && \
		.venv-gpu/bin/pip install --no-deps -e .
setup: $(ENV) ## the virtual environment (.venv) from requirements.txt

# Our own venv: exact pins in one pip command (torch pinned alongside, so no CUDA build is pulled in).
$(VENV)/.installed: requirements.txt pyproject.toml
	@echo ">>> setting up $(VENV) from requirements.txt (about 2 minutes on first run)"
	test -x $(PY) || $(BOOT_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-cache-dir --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation --disable-pip-version-check -e .
	touch $@

# An existing environment named by VENV=…: used as it is, only paper_lib is made importable.
$(VENV)/.paper_lib-checked:
	@test -x $(PY) || { echo "VENV=$(VENV) has no bin/python"; exit 1; }
	$(PY) -c "import paper_lib" 2>/dev/null || $(PY) -m pip install --quiet --no-deps -e .
	touch $@

# One `make reproduce` per results folder at a time: a second one refuses at once (flock; the lock goes with the
# process, even when it is killed). Under it, the runs are trained and the notebooks executed.
REPRODUCE_LOCK := $(RESULTS)/.reproduce.lock
reproduce: $(ENV)
	@mkdir -p $(RESULTS)
	@flock -n -E 75 $(REPRODUCE_LOCK) $(MAKE) --no-print-directory reproduce-locked; rc=$$?; \
	if [ $$rc = 75 ]; then echo "another make reproduce is writing $(RESULTS) (it holds $(REPRODUCE_LOCK)): \
	wait for it to finish" >&2; fi; exit $$rc

.PHONY: reproduce-locked
reproduce-locked: $(ENV) runs $(EXECUTED)
	$(PY) -m paper_lib.paths --check --scale $(SCALE) --root $(RESULTS) --notebooks-dir $(NB_DIR)

# Every training run of notebooks 02-05 as its own unit: finished runs are skipped, a failed one is reported (and
# redone alone on the next call) without stopping the others; JOBS worker processes share the runs.
runs: $(ENV) preflight ## train every run of SCALE not yet finished (JOBS workers)
	$(PY) -m paper_lib.experiments run --scale $(SCALE) --jobs $(JOBS) --root $(RESULTS) $(SETS) $(RUNS_FLAGS) \
		--report-to $(REPORT_TO)
	@if [ "$(SCALE)" = small ]; then $(PY) -m paper_lib.experiments.overlap --scale small --root $(RESULTS); fi

# Touched only when a run's manifest changed since the last time, so a `runs` that trained nothing leaves the
# notebooks that read the runs up to date.
$(RUNS_STAMP): runs
	@mkdir -p $(@D)
	@if [ ! -f $@ ] || [ -n "$$(find $(RESULTS)/runs -name manifest.json -newer $@ -print -quit)" ]; then touch $@; fi

$(RUN_READERS): $(RUNS_STAMP)
# The report quotes the other notebooks' artifacts: it runs after all of them.
$(REPORT_NB): $(filter-out $(REPORT_NB),$(EXECUTED))

# A notebook runs into a .partial copy that is renamed only when every cell succeeded, after `runs` (order-only: the
# notebooks that read runs depend on RUNS_STAMP above). Its record in results/SCALE/.executions/ (what `paths
# --check` trusts) is dropped before it starts and written after its last cell.
$(EXEC)/%.ipynb: $(NB_DIR)/%.ipynb $(LIB) | $(ENV) runs
	@mkdir -p $(EXEC)
	rm -f $@
	$(PY) -m paper_lib.paths --forget $* --scale $(SCALE) --root $(RESULTS)
	$(PY) -m papermill -k python3 --cwd $(NB_DIR) --no-progress-bar --log-output \
		$< $(EXEC)/$*.partial.ipynb -p scale $(SCALE) -p results_dir $(RESULTS)
	$(PY) -m paper_lib.paths --record $* --scale $(SCALE) --root $(RESULTS) --notebooks-dir $(NB_DIR)
	mv $(EXEC)/$*.partial.ipynb $@

test: $(ENV) ## fast tests (about 3 minutes on 2 cores)
	$(PY) -m pytest -m "not slow and not gpu" -q

test-slow: $(ENV) ## slow tests: notebooks at SCALE=smoke, subprocess runs, a paper-scale dry run
	$(PY) -m pytest -m "slow and not gpu" -q

test-all: $(ENV) ## every tier (the gpu tier skips itself without CUDA)
	$(PY) -m pytest -q

# The measurements of notebook 06 (which alone writes the committed table_overhead), into results/bench/ (ignored).
bench: $(ENV) ## the kernel vs the authors' trie and λ-GRPO's step overhead, into results/bench/SCALE
	$(PY) -m paper_lib.bench --scale $(SCALE) --results-dir $(CURDIR)/results/bench/$(SCALE)

# On a GPU machine, one call of <= 10 minutes: the paper scale's CUDA path checked, a summary in GPU_CHECK_OUT
# (paper_lib/bench/gpu_check.py). FORM=full needs the hub and .venv-gpu; stand-in needs neither (use VENV= for an
# environment with torch preinstalled); auto picks. ALLOW_CPU=1: a dry run of the script without a GPU.
FORM ?= auto
GPU_CHECK_OUT ?= $(CURDIR)/results/gpu-check
HUB_ON := $(if $(filter stand-in,$(FORM)),,env -u HF_HUB_OFFLINE -u TRANSFORMERS_OFFLINE -u HF_DATASETS_OFFLINE)
gpu-check: $(ENV) ## on a GPU machine: the CUDA path in <= 10 min (FORM=full|stand-in|auto; ALLOW_CPU=1 dry run)
	$(HUB_ON) $(PY) -m paper_lib.bench.gpu_check --form $(FORM) --out $(GPU_CHECK_OUT) $(if $(ALLOW_CPU),--allow-cpu)

lab: $(ENV) ## JupyterLab on notebooks/
	$(VENV)/bin/jupyter lab $(NB_DIR)

lint: $(ENV) ## ruff over the library, tests and notebooks
	$(VENV)/bin/ruff check paper_lib tests notebooks

clean-smoke: ## delete the smoke scale's results
	rm -rf results/smoke results/executed/smoke
