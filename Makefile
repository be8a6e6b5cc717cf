# One virtual environment in .venv; `make test` builds it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev

.PHONY: venv test test-unit lint demo bench bench-fast clean

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

lint: venv
	$(BIN)/ruff check tsc_toolkit tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
