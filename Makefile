# spacesim: `make run` (set up + main job) and `make test` (set up + lint + types + tests).
# Both create the virtual environment from the lock file when it is missing or stale.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
EXTRAS ?= --extra dev --extra notebooks --extra slurm --extra ray
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# byte-compile at install: start-up matters, and some machines set PYTHONDONTWRITEBYTECODE
export UV_COMPILE_BYTECODE := 1
PY := $(VENV)/bin/python
# the stamp names the extras, so `make setup EXTRAS="... --extra ray"` re-syncs
STAMP := $(VENV)/.installed-$(shell echo '$(EXTRAS)' | cksum | cut -d' ' -f1)

.PHONY: setup run test lint typecheck pytest bench clean

setup: $(STAMP)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv>=0.9,<1"

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) $(EXTRAS)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/spacesim main $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check sim tests benchmarks analysis
	$(VENV)/bin/ruff format --check sim tests benchmarks analysis

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# the kernel tests run twice: as plain Python (NUMBA_DISABLE_JIT=1) for coverage, and compiled
KERNEL_TESTS := tests/test_arrivals.py tests/test_queue_kernel.py tests/test_pipeline_kernel.py \
	tests/test_policy_kernels.py tests/test_stats_kernel.py tests/test_calendar.py tests/test_rng.py \
	tests/test_partial_drop.py tests/test_prefetch.py
# machine code exists only with the JIT: that test runs in the compiled pass alone
NO_JIT_DESELECT := --deselect tests/test_prefetch.py::test_prefetch_is_an_instruction

# First the kernels compile once into numba's cache (sim.warm) while the plain-Python pass runs
# beside it; then the main pass, whose workers and `spacesim` subprocesses
# load the cache instead of each compiling the same kernels at once.
pytest: $(STAMP)
	NUMBA_DISABLE_JIT=1 $(VENV)/bin/pytest -n 2 -q $(KERNEL_TESTS) $(NO_JIT_DESELECT) & nojit=$$!; \
	$(PY) -m sim.warm; warm=$$?; wait $$nojit; nojit=$$?; test $$warm -eq 0 -a $$nojit -eq 0
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(VENV)/bin/spacesim bench

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
