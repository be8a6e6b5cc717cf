"""The built wheel is complete: installed into a fresh environment, away from the checkout, it
loads the bundled data, fits, draws, copies out its notebooks and runs one of them.

The fresh environment gets only the wheel (``pip install --no-deps --no-index``); the
dependencies come from the environment running the tests, through a ``.pth`` file that adds its
site-packages after the new one's. Nothing is downloaded, so the test runs offline.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the build reads: the package, its configuration, and the folders it bundles.
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "tsc_toolkit", "data",
                "notebooks")
#: The wheel ships data sets and notebooks, not the whole repository.
MAX_WHEEL_BYTES = 5_000_000

pytestmark = pytest.mark.slow


def _run(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _has_build_requirements() -> bool:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy, so that build/ and *.egg-info never land in the checkout under test.
    src = tmp_path_factory.mktemp("src")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "outputs", ".ipynb_checkpoints",
                                    "*.egg-info")
    for name in BUILD_INPUTS:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    out = tmp_path_factory.mktemp("wheels")
    # Offline with this environment's setuptools when it has what pyproject.toml asks for;
    # otherwise pip fetches the build requirements into an isolated environment (from PyPI).
    offline = ["--no-build-isolation", "--no-index"] if _has_build_requirements() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "-q", "-w", str(out),
          str(src)])
    (path,) = out.glob("tsc_toolkit-*.whl")
    return path


def test_wheel_carries_the_data_sets_and_notebooks_and_stays_small(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    bundled = "tsc_toolkit/_bundled/"
    for name in ("GunPoint.npz", "PLAID.npz", "train.csv", "train_labels.csv", "README.md"):
        assert f"{bundled}data/{name}" in names
    notebooks = {Path(n).name for n in names if n.startswith(bundled + "notebooks/")}
    assert notebooks >= {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert not [n for n in names if n.startswith(bundled) and n.endswith(".py")]
    assert wheel.stat().st_size < MAX_WHEEL_BYTES


CHECKS = textwrap.dedent("""
    import sys, tarfile
    from pathlib import Path

    import tsc_toolkit
    venv = Path(sys.argv[1]).resolve()
    assert Path(tsc_toolkit.__file__).resolve().is_relative_to(venv), tsc_toolkit.__file__

    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.embedding.tloss import shipped_weights
    from tsc_toolkit.io.datasets import data_dir, load_dataset
    from tsc_toolkit.plots import centroids
    from tsc_toolkit.sagemaker.deploy import package_model
    from tsc_toolkit.sagemaker.training_job import _package_source

    # the encoder pretrained for the package is installed with it, inside the virtualenv
    weights = shipped_weights()
    assert weights is not None and weights.resolve().is_relative_to(venv), weights
    X, y = load_dataset("GunPoint")
    assert X.shape == (200, 1, 150), X.shape
    assert (data_dir() / "train.csv").is_file()
    model = CNNKMeans(clusters=2, epochs=1, blocks=1, filters=8, reduced_size=8, output_size=4,
                      batch_size=16, n_init=1, score_sample_size=20, random_state=0,
                      device="cpu", verbose=0).fit(X[:40])
    assert model.predict(X[40:60]).shape == (20,)
    fig = centroids(model, X=X[:40]).to_dict()
    assert fig["data"], "the figure has no traces"

    # The SageMaker launchers package the installed source, without the bundled files.
    code = _package_source(Path("code"))
    copied = {p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()}
    assert "tsc_toolkit/cnn_kmeans.py" in copied and "tsc_toolkit/sagemaker/train.py" in copied
    assert not [n for n in copied if "_bundled" in n]
    model.save("model")
    with tarfile.open(package_model("model", "model.tar.gz")) as tar:
        members = tar.getnames()
    assert "code/tsc_toolkit/embedding/encoder.py" in members and "config.json" in members
    assert not [n for n in members if "_bundled" in n]
    print("checks passed")
""")


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment whose site-packages is searched first, then ours."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    # Plain directory lines: the .pth files of our site-packages (such as the editable
    # install of this checkout) are not processed, so tsc_toolkit can only come from the wheel.
    Path(site, "tsc_toolkit_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


def test_installed_wheel_works_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TSC_TOOLKIT_DATA", "VIRTUAL_ENV")}
    # --ignore-installed: the fresh venv sees our site-packages, where the editable install's
    # metadata would otherwise make pip call the wheel "already satisfied" and skip it.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          "--no-index", "--ignore-installed", "-q", str(wheel)], env=env)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TSC_TOOLKIT_FAST="1",
               JUPYTER_PATH=str(tmp_path / "jupyter"))
    work = tmp_path / "work"
    work.mkdir()
    (work / "checks.py").write_text(CHECKS)
    done = _run([str(python), "checks.py", str(venv)], cwd=work, env=env)
    assert "checks passed" in done.stdout

    # The console script copies the notebooks out of the installed package ...
    _run([str(venv / "bin" / "tsc-toolkit"), "notebooks", "nbs"], cwd=work, env=env)
    copied = sorted(p.name for p in (work / "nbs").glob("*.ipynb"))
    assert copied == sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))

    # ... and the quickstart runs there in fast mode, on a kernel of the fresh environment
    # (a kernel spec of our own, found first through JUPYTER_PATH).
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    run_notebook = textwrap.dedent("""
        import nbformat, sys
        from nbclient import NotebookClient
        nb = nbformat.read(sys.argv[1], as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import tsc_toolkit; print(tsc_toolkit.__file__)"))
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": "nbs"}}).execute()
        nbformat.write(nb, "executed.ipynb")
    """)
    _run([str(python), "-c", run_notebook, "nbs/01_quickstart.ipynb"], cwd=work, env=env)
    nb = json.loads((work / "executed.ipynb").read_text())
    texts = ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
             for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert str(venv.resolve()) in texts[-1], texts[-1]
    assert (work / "nbs" / "outputs" / "predictions.csv").is_file()
    # The report keeps the dashboard's last state, not the one it had when the cell started.
    dashboard = [t for t in texts if t.startswith("TrainingDashboard:")]
    assert dashboard and all(", done" in t for t in dashboard), dashboard
