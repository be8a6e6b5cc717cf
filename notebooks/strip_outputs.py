"""Execute the notebooks in fast mode and keep only light outputs, ready to commit.

    python notebooks/strip_outputs.py                 # every notebooks/*.ipynb
    python notebooks/strip_outputs.py notebooks/04_how_it_learns.ipynb
    python notebooks/strip_outputs.py --no-execute    # only strip what is stored
    python notebooks/strip_outputs.py --check         # exit 1 if a notebook needs stripping

Why outputs are committed at all: ``pytest --nbval-lax`` compares the cells marked
``# NBVAL_CHECK_OUTPUT`` with their stored output, and skips cells that were never run. So
the notebooks are executed in fast mode (``TSC_TOOLKIT_FAST=1``, as the tests run them) and
committed with their text outputs. What goes: widget state (the plotly FigureWidget's model
state alone is ~5 MB), plotly figure bundles, HTML holding scripts, JavaScript, and timing
metadata. Each removed figure leaves a one-line text placeholder, so a reader of the stored
notebook knows a figure is drawn there.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = "[figure: run the notebook to draw it]"
# Output types that are bulky or need a live kernel/browser to mean anything.
DROP = (
    "application/vnd.plotly.v1+json",
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
    "text/javascript",
)
MAX_HTML = 20_000  # a pandas table is fine, an embedded plotly.js is not
MAX_IMAGE = 100_000  # base64 characters


def strip_notebook(nb):
    """Return a copy of ``nb`` with bulky outputs and volatile metadata removed."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") in ("display_data", "execute_result"):
                data = out["data"]
                was_figure = any(k in data for k in DROP)
                for key in DROP:
                    data.pop(key, None)
                html = data.get("text/html", "")
                if html and ("<script" in html or len(html) > MAX_HTML):
                    data.pop("text/html")
                for key in ("image/png", "image/jpeg", "image/svg+xml"):
                    if len(data.get(key, "")) > MAX_IMAGE:
                        data.pop(key)
                out["metadata"] = {}
                if not data:
                    if not was_figure:
                        continue  # e.g. the script that loads plotly.js: nothing to keep
                    data["text/plain"] = PLACEHOLDER
            outputs.append(out)
        cell.outputs = outputs
    return nb


def execute_notebook(nb, path: Path, *, fast: bool = True, timeout: int = 1800):
    """Run ``nb`` top to bottom in its own folder with this interpreter's kernel."""
    from nbclient import NotebookClient

    os.environ["TSC_TOOLKIT_FAST"] = "1" if fast else "0"
    # The kernel imports the package from this checkout.
    root = str(HERE.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=False)
    client.execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="notebooks to process (default: notebooks/*.ipynb)")
    parser.add_argument("--no-execute", action="store_true",
                        help="strip the stored outputs without running the notebooks")
    parser.add_argument("--full", action="store_true",
                        help="execute in full mode (the committed notebooks use fast mode)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a notebook has outputs to strip")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    status = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            if strip_notebook(nb) != nb:
                print(f"{path}: has outputs to strip (run notebooks/strip_outputs.py)")
                status = 1
            continue
        if not args.no_execute:
            print(f"executing {path} ({'full' if args.full else 'fast'} mode)", flush=True)
            execute_notebook(nb, path, fast=not args.full)
        nb = strip_notebook(nb)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return status


if __name__ == "__main__":
    sys.exit(main())
