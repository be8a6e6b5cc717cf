"""The tsc-toolkit command on fg-style CSV files."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from tsc_toolkit import CNNKMeans
from tsc_toolkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
FG = Path(__file__).parent / "data" / "fg_sample"
SMALL = ["--blocks", "1", "--filters", "8", "--reduced-size", "8", "--output-size", "6",
         "--epochs", "1", "--batch-size", "16", "--random-state", "0", "--device", "cpu",
         "--score-sample-size", "30", "--n-init", "1"]


def test_fit_then_predict_writes_fg_output_contract(tmp_path, capsys):
    model_dir = tmp_path / "model"
    assert main(["fit", str(FG / "train.csv"), "--valid", str(FG / "valid.csv"),
                 "--model-dir", str(model_dir), "--clusters", "3", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "Training on 160 time series" in out
    assert "epoch: 1 train_loss: " in out and "valid_score: " in out
    model = CNNKMeans.load(model_dir)
    assert model.clusters == 3 and model.output_size == 6

    pred = tmp_path / "pred.csv"
    assert main(["predict", str(model_dir), str(FG / "test.csv"), "--output", str(pred)]) == 0
    rows = [line.split(",") for line in pred.read_text().splitlines()]
    assert len(rows) == 100 and all(len(r) == 1 + 6 for r in rows)
    assert {r[0] for r in rows} <= {"0.0", "1.0", "2.0"}
    from tsc_toolkit import read_csv

    expected = model.predict(read_csv(FG / "test.csv"))
    np.testing.assert_array_equal([int(float(r[0])) for r in rows], expected)


def test_bad_hyperparameter_exits_with_a_message(tmp_path, capsys):
    code = main(["fit", str(FG / "train.csv"), "--model-dir", str(tmp_path / "m"),
                 "--kernel-size", "three"])
    assert code == 2
    assert "kernel-size must be an integer" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_bad_csv_exits_with_the_row_and_column(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,3\n4,x,6\n")
    assert main(["fit", str(bad), "--model-dir", str(tmp_path / "m"), *SMALL]) == 2
    assert "row 2, column 2" in capsys.readouterr().err


def test_predict_on_a_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none"), str(FG / "test.csv")]) == 2
    assert "none" in capsys.readouterr().err


def test_console_entry_point_runs_as_a_module(tmp_path):
    done = subprocess.run([sys.executable, "-m", "tsc_toolkit.cli", "--help"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "fit" in done.stdout and "predict" in done.stdout


def test_notebooks_command_copies_the_tutorials_and_keeps_existing_copies(tmp_path, capsys):
    dest = tmp_path / "nbs"
    assert main(["notebooks", str(dest)]) == 0
    expected = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert sorted(p.name for p in dest.glob("*.ipynb")) == expected
    assert (dest / "01_quickstart.ipynb").read_bytes() == \
        (ROOT / "notebooks" / "01_quickstart.ipynb").read_bytes()
    (dest / "01_quickstart.ipynb").write_text("my edits")
    assert main(["notebooks", str(dest)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (dest / "01_quickstart.ipynb").read_text() == "my edits"
    assert main(["notebooks", str(dest), "--overwrite"]) == 0
    assert (dest / "01_quickstart.ipynb").read_text() != "my edits"


def test_predict_streams_parquet_in_chunks_to_parquet(tmp_path, tiny_model_dir):
    import pandas as pd

    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(30, length=24, missing_rate=0.1, short_fraction=0.3, random_state=2)
    rows = [{"series_id": i, "time": t, "value": float(X[i, 0, t])}
            for i in range(len(X)) for t in range(24) if not np.isnan(X[i, 0, t:]).all()]
    pd.DataFrame(rows).to_parquet(tmp_path / "long.parquet", row_group_size=50)
    out = tmp_path / "pred.parquet"
    assert main(["predict", str(tiny_model_dir()), str(tmp_path / "long.parquet"),
                 "--output", str(out), "--chunk-size", "4"]) == 0
    frame = pd.read_parquet(out)
    model = CNNKMeans.load(tiny_model_dir())
    assert frame.series_id.tolist() == list(range(30))
    np.testing.assert_array_equal(frame.closest_cluster, model.predict(X))
