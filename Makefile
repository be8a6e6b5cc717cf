# One virtual environment in .venv; `make test` builds it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev

.PHONY: venv test test-unit test-oldest lint demo bench bench-fast clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# CPU build of torch first, so the package's bare `torch` requirement is already met.
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $@

venv: $(BIN)/.installed

test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile

test-unit: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile tests

# The oldest versions we support, as SageMaker Studio ships them (numpy 1.26, scikit-learn 1.5-1.7).
OLDEST := "numpy==1.26.4" "scikit-learn==1.5.2" "scipy==1.13.1" "pandas==2.2.3"
test-oldest:
	$(PYTHON) -m venv .venv-oldest
	.venv-oldest/bin/pip install -q "$(TORCH_SPEC)" $(OLDEST)
	.venv-oldest/bin/pip install -q -e ".[dev]" $(OLDEST)
	.venv-oldest/bin/python -m pytest -n 2 --dist loadfile tests

lint: venv
	$(BIN)/ruff check tsc_toolkit tests benchmarks

# Benchmarks against tslearn/aeon/scikit-learn (the `bench` extra); writes docs/benchmarks.md.
bench: venv
	$(BIN)/pip install -q -e ".[dev,bench]"
	nice -n 10 $(BIN)/python -m benchmarks.run --out docs/benchmarks.md

bench-fast: venv
	$(BIN)/pip install -q -e ".[dev,bench]"
	$(BIN)/python -m benchmarks.run --fast --out build/benchmarks-fast.md

clean:
	rm -rf $(VENV) .venv-oldest build *.egg-info .pytest_cache
