# One virtual environment in .venv; `make test` builds it when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev

.PHONY: venv test test-unit test-oldest lint docs demo report notebooks bench bench-fast clean

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

# `make demo`: run a notebook in full mode and save it as a self-contained HTML report.
# PLOTLY_RENDERER adds a text/html copy of each figure, with plotly.js embedded once, so the
# report draws its figures offline; widget state is not stored (it would need unpkg.com), and
# require.js, which nothing in the report needs, is not fetched. LaTeX still uses MathJax's CDN.
NOTEBOOK ?= notebooks/01_quickstart.ipynb
REPORTS ?= reports

$(BIN)/.notebooks: $(BIN)/.installed
	$(BIN)/pip install -q -e ".[dev,notebooks]"
	touch $@

demo: $(BIN)/.notebooks
	@$(MAKE) --no-print-directory report NOTEBOOK=$(NOTEBOOK) REPORTS=$(REPORTS)

report:
	@test -f $(NOTEBOOK) || { echo "$(NOTEBOOK) does not exist; choose one with NOTEBOOK=notebooks/..."; exit 1; }
	@mkdir -p $(REPORTS)
	TSC_TOOLKIT_FAST=0 PLOTLY_RENDERER=plotly_mimetype+notebook $(BIN)/jupyter nbconvert \
		--to html --execute --ExecutePreprocessor.timeout=3600 \
		--ExecutePreprocessor.store_widget_state=False \
		--HTMLExporter.require_js_url=data:text/javascript, \
		--output-dir $(REPORTS) $(NOTEBOOK)
	@echo
	@echo "Report: $(abspath $(REPORTS))/$(basename $(notdir $(NOTEBOOK))).html (open it in a browser; works offline)"
	@echo "Notebooks: $(BIN)/jupyter lab notebooks/"

# Re-run the notebooks in fast mode and strip bulky outputs before committing them.
notebooks: $(BIN)/.notebooks
	$(BIN)/python notebooks/strip_outputs.py

lint: venv
	$(BIN)/ruff check tsc_toolkit tests benchmarks notebooks docs

# `make docs`: the documentation site (docs/, the docstrings, the notebooks with their stored
# outputs) into build/docs/html, every warning an error; no network needed at build or read time.
# The dev extra brings the docs extra; tests/test_docs.py builds and checks the same site.
DOCS_OUT ?= build/docs/html
docs: venv
	$(BIN)/python -m sphinx -W --keep-going -b html -d build/docs/doctrees docs $(DOCS_OUT)
	@echo
	@echo "Site: $(abspath $(DOCS_OUT))/index.html"

# Benchmarks against tslearn/aeon/scikit-learn on the 31-set development panel (the `bench`
# extra), 80 min on 2 idle cores with the peers' seeds 1-2 computed (53 min measured with all peers stored, 2026-12-03), then the k scans on the saved features (26 min with K-Means, measured 2026-12-03; then the spectral scan without the gap statistic, whose spectral clustering of 10 reference sets per k is the costly part; its time is in docs/benchmarks_k.md); writes docs/benchmarks.md, docs/results_summary.md, docs/benchmark_runs.csv, docs/images, docs/benchmarks_k.md (each k clustered as the estimator clusters: the recommended k) and docs/benchmarks_k_kmeans.md (each k clustered by K-Means); last the sanity suite on easy data (docs/benchmarks_sanity.md, 36 fits, 12 min measured 2026-12-07 on a busy machine), which fails the target if the default loses a case that K-Means on its features finds.
bench: venv
	$(BIN)/pip install -q -e ".[dev,bench]"
	nice -n 10 $(BIN)/python -m benchmarks.run --out docs/benchmarks.md --save-runs docs/benchmark_runs.csv --partial-runs build/bench_partial_runs.csv --features-dir build/panel_features
	nice -n 10 $(BIN)/python -m benchmarks.choose_k --features build/panel_features --out docs/benchmarks_k.md --metrics inertia silhouette calinski_harabasz davies_bouldin
	nice -n 10 $(BIN)/python -m benchmarks.choose_k --algorithm lloyd --features build/panel_features --out docs/benchmarks_k_kmeans.md
	nice -n 10 $(BIN)/python -m benchmarks.sanity --features-dir build/sanity_features

bench-fast: venv
	$(BIN)/pip install -q -e ".[dev,bench]"
	$(BIN)/python -m benchmarks.run --fast --out build/benchmarks-fast.md

clean:
	rm -rf $(VENV) .venv-oldest build *.egg-info .pytest_cache $(REPORTS)
