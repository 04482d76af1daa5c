# bigganctl — every target creates .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all test-numerics bench bench-eval bench-interp lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## The main job: a truncated sample grid of class 207 (golden retriever).
demo: $(STAMP)
	$(VENV)/bin/bigganctl sample --class 207 --trunc 0.5 --out out/demo.png --overwrite

## The test suite (CPU, under 5 min of pytest time on 2 cores; slow tests are marked and skipped).
test: $(STAMP)
	$(PY) -m pytest -q -m 'not slow' --durations=15

## Everything, slow tests included.
test-all: $(STAMP)
	$(PY) -m pytest -q --durations=15

## The numerics tests (parity, batch independence, reproducibility, slow ones too) on ATen's
## portable kernels unless ATEN_CPU_CAPABILITY is set: another CPU's float rounding, reproduced
## here. Other machines: MKL_CBWR=AVX2, ONEDNN_MAX_CPU_ISA=AVX2, OMP_NUM_THREADS=1|3 (docs/development.md).
test-numerics: $(STAMP)
	ATEN_CPU_CAPABILITY=$${ATEN_CPU_CAPABILITY:-default} $(PY) -m pytest -q -m numerics

## Benchmarks against the reference implementations (docs/benchmarks.md).
bench: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_generate.py

bench-eval: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_eval.py

bench-interp: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(PY) benchmarks/bench_interp.py

lint: $(STAMP)
	$(PY) -m ruff check bigganctl tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
