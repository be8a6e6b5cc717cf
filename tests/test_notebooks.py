"""The notebook frame: committed notebooks are light, read the run mode first, and check
something; the nbval sanitiser and the output stripper do what notebooks/README.md says."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def _load_stripper():
    spec = importlib.util.spec_from_file_location("strip_outputs", NOTEBOOKS / "strip_outputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


strip_outputs = _load_stripper()


def _sanitize(text: str) -> str:
    # The same parsing nbval applies to the file (nbval.plugin.get_sanitize_patterns).
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((NOTEBOOKS / "nbval_sanitize.cfg").read_text())
    for regex, replace in patterns:
        text = re.sub(regex, replace, text)
    return text


def test_there_is_at_least_one_notebook():
    assert PATHS, "notebooks/ holds no notebook"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_committed_notebook_is_stripped_and_small(path):
    nb = nbformat.read(path, as_version=4)
    assert strip_outputs.strip_notebook(nb) == nb, (
        f"{path.name} holds bulky outputs: run python notebooks/strip_outputs.py {path}")
    assert path.stat().st_size < 300_000


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_opens_with_its_description_and_reads_the_run_mode(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "Time" in first.source and "Seed" in first.source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert re.search(r"\bsettings\(", first_code.source)  # settings() or settings(max_series=...)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_notebook_has_a_checked_cell_with_a_stored_output(path):
    # nbval skips cells never run, so a check cell without stored output checks nothing.
    nb = nbformat.read(path, as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code"
               and ("NBVAL_CHECK_OUTPUT" in c.source
                    or "nbval-check-output" in c.metadata.get("tags", []))]
    assert checked, f"{path.name} has no NBVAL_CHECK_OUTPUT cell"
    for cell in checked:
        assert cell.execution_count is not None and cell.outputs


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_stored_outputs_come_from_a_fast_mode_run(path):
    nb = nbformat.read(path, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "Fast mode" in text and "Full mode" not in text


def _figure_output():
    return nbformat.v4.new_output("display_data", data={
        "application/vnd.plotly.v1+json": {"data": [], "layout": {}},
        "text/html": "<div></div><script>Plotly.newPlot()</script>"})


def test_stripper_replaces_figures_and_drops_widget_state_but_keeps_text():
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"x": "y" * 1000}}
    code = nbformat.v4.new_code_cell("fig", execution_count=3)
    code.metadata["execution"] = {"iopub.execute_input": "2026-11-29T07:00:00Z"}
    code.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hello\n"),
        _figure_output(),
        nbformat.v4.new_output("display_data", data={"text/html": "<script>plotly.js</script>"}),
        nbformat.v4.new_output("execute_result", execution_count=3,
                               data={"text/plain": "   a\n0  1", "text/html": "<table></table>"}),
    ]
    nb.cells = [code]
    out = strip_outputs.strip_notebook(nb)
    assert "widgets" not in out.metadata
    cell = out.cells[0]
    assert cell.execution_count == 3 and "execution" not in cell.metadata
    assert [o.output_type for o in cell.outputs] == ["stream", "display_data", "execute_result"]
    assert cell.outputs[1].data == {"text/plain": strip_outputs.PLACEHOLDER}
    assert cell.outputs[2].data == {"text/plain": "   a\n0  1", "text/html": "<table></table>"}
    nbformat.validate(out)
    assert strip_outputs.strip_notebook(out) == out  # idempotent
    assert "widgets" in nb.metadata  # the input is left alone


def test_stripper_check_mode_reports_a_notebook_with_bulky_outputs(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("fig", execution_count=1)
    cell.outputs = [_figure_output()]
    nb.cells = [cell]
    path = tmp_path / "bulky.ipynb"
    nbformat.write(nb, path)
    assert strip_outputs.main(["--check", str(path)]) == 1
    assert "bulky.ipynb" in capsys.readouterr().out
    assert strip_outputs.main(["--no-execute", str(path)]) == 0
    assert strip_outputs.main(["--check", str(path)]) == 0


@pytest.mark.parametrize("volatile, stable", [
    ("model at 0x7f3a2b1c4d50>", "model at 0xADDRESS>"),
    ("'uid': '3f2c1a9e-1b2c-4d5e-8f90-1234567890ab'", "'uid': 'UUID'"),
    ("saved 2026-11-29T07:05:51Z", "saved DATETIME"),
    ("on 2026-11-29", "on DATE"),
    ("at 07:05:51", "at HH:MM:SS"),
    ("epoch took 3.25 s", "epoch took DURATION"),
    ("done in 12 seconds", "done in DURATION"),
    ("12.5 it/s", "RATE"),
    ("wrote /home/sagemaker-user/tsc/model/model.safetensors",
     "wrote PATH/model.safetensors"),
    ("server at http://127.0.0.1:46319)", "server at http://127.0.0.1:PORT)"),
    ("job tsc-cnn-kmeans-20261129075905 done", "job tsc-cnn-kmeans-TIMESTAMP done"),
    ("job kmeans-2026-11-29-08-00-32-869 done", "job kmeans-TIMESTAMP done"),
    ("Predictor(endpoint_name='tsc-cnn-kmeans-2026-11-29-07-59-52-213')",
     "Predictor(endpoint_name='tsc-cnn-kmeans-TIMESTAMP')"),
])
def test_sanitiser_hides_what_changes_between_runs(volatile, stable):
    assert _sanitize(volatile) == stable


@pytest.mark.parametrize("text", [
    "embeddings recorded at epochs [0, 1, 2, 3]",
    "each snapshot: 60 series x 16 numbers, unit length: True",
    "anchor:    series 0, steps 5..99",
    "k = 4, silhouette 0.85",
    "output files: ['part-0.csv.out', 'part-1.csv.out', 'part-2.csv.out']",
    "training job: Completed | final metrics: ['test:msd', 'test:ssd', 'train:msd']",
])
def test_sanitiser_leaves_checked_facts_alone(text):
    assert _sanitize(text) == text
