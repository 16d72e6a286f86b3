# One command sets up and runs: `make test` or `make demo`.
# The virtual environment lives in .venv; torch is installed first, pinned, so pip
# does not pick a multi-GB CUDA build where a CPU wheel is at hand. Elsewhere,
# pick your own torch, e.g.:
#   make test TORCH_SPEC=torch TORCH_FLAGS="--index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_FLAGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo figures bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_FLAGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/python examples/simulator_demo.py --out demo_out
	$(BIN)/efat simulate --plot demo_out/accuracy_vs_fault_rate.png
	$(BIN)/efat demo --out demo_out/efat --processes 2

figures: $(STAMP)
	for f in examples/fig[1-5]_*.py; do $(BIN)/python $$f --processes 2 || exit 1; done

bench: $(STAMP)
	$(BIN)/python bench/bench_limits.py
	$(BIN)/python bench/bench_fast.py
	$(BIN)/python bench/bench_float.py
	$(BIN)/python bench/bench_abft.py
	$(BIN)/python bench/bench_cycle.py
	$(BIN)/python bench/bench_mapping.py
	$(BIN)/python bench/bench_plan.py
	$(BIN)/python bench/bench_efat.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_scalesim.py
	$(BIN)/python bench/bench_memory.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis
