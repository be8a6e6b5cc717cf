"""The SageMaker training entry point, run as the container runs it: a subprocess with SM_* env."""

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tsc_toolkit.cnn_kmeans import CNNKMeans
from tsc_toolkit.io.csvio import write_csv
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.sagemaker.container.train import (
    TrainingError,
    find_model,
    parse_arguments,
    read_channel,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--clusters", "3", "--blocks", "2", "--filters", "16", "--reduced-size", "16",
        "--output-size", "16", "--random-state", "0", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    X, _ = make_series(60, n_clusters=3, length=40, random_state=0)
    (root / "training").mkdir()
    write_csv(X[:30], root / "training" / "part-a.csv")
    write_csv(X[30:50, :, :32], root / "training" / "part-b.csv")  # shorter series
    (root / "validation").mkdir()
    write_csv(X[50:], root / "validation" / "valid.csv")
    return root


def layout(tmp_path, data, **channels):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(SM_CHANNEL_TRAINING=str(data / "training"),
               SM_MODEL_DIR=str(tmp_path / "model"),
               SM_OUTPUT_FAILURE=str(tmp_path / "output" / "failure"),
               SM_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
               OMP_NUM_THREADS="1")
    for name in ("SM_CHANNEL_VALIDATION", "SM_CHANNEL_MODEL", "WORLD_SIZE", "RANK"):
        env.pop(name, None)
    for name, path in channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    return env


def run_entry(env, args, *, torchrun=0, cwd=None):
    if torchrun:
        torchrun_bin = Path(sys.executable).with_name("torchrun")
        cmd = [str(torchrun_bin), "--standalone", "--nproc_per_node", str(torchrun),
               "-m", "tsc_toolkit.sagemaker.train", *args]
    else:
        cmd = [sys.executable, "-m", "tsc_toolkit.sagemaker.train", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def epoch_lines(text):
    return [line for line in text.splitlines() if line.startswith("epoch: ")]


def test_parse_arguments_splits_paths_and_rejects_strays():
    hps, paths = parse_arguments(["--batch_size", "8", "--checkpoint-dir=/x", "--lr", "0.1"])
    assert hps == {"batch-size": "8", "lr": "0.1"} and paths == {"checkpoint-dir": "/x"}
    with pytest.raises(TrainingError, match="value"):
        parse_arguments(["--lr"])
    with pytest.raises(TrainingError, match="--name value"):
        parse_arguments(["lr", "3"])


def test_read_channel_concatenates_files_and_pads(data):
    X = read_channel(data / "training")
    assert X.shape == (50, 1, 40)
    assert np.isnan(X[30:, 0, 32:]).all() and not np.isnan(X[:30]).any()
    with pytest.raises(TrainingError, match="No data"):
        read_channel(data / "nowhere")


def test_a_parquet_channel_trains_like_the_csv_one(tmp_path, data):
    import pandas as pd

    X = read_channel(data / "training")
    rows = [{"series_id": i, "time": t, "value": float(X[i, 0, t])}
            for i in range(len(X)) for t in range(X.shape[2]) if not np.isnan(X[i, 0, t])]
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pd.DataFrame(rows[:700]).to_parquet(parquet / "part-0.parquet", row_group_size=64)
    pd.DataFrame(rows[700:]).to_parquet(parquet / "part-1.parquet", row_group_size=64)
    # a series cut between the two files reads as two series, as two CSV parts would
    expected = 51 if rows[699]["series_id"] == rows[700]["series_id"] else 50
    assert len(read_channel(parquet)) == expected
    np.save(tmp_path / "x.npy", X)
    np.testing.assert_array_equal(read_channel(tmp_path / "x.npy"), X)
    with pytest.raises(TrainingError, match="1 channel"):
        read_channel(tmp_path / "x.npy", channels=2)

    env = layout(tmp_path, data, training=parquet)
    proc = run_entry(env, [*TINY, "--epochs", "1"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    model = CNNKMeans.load(tmp_path / "model")
    assert len(model.labels_) == expected


def test_trains_saves_prints_metrics_and_checkpoints(tmp_path, data):
    env = layout(tmp_path, data, validation=data / "validation")
    proc = run_entry(env, [*TINY, "--epochs", "2"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = epoch_lines(proc.stdout)
    assert len(lines) == 2 and "valid_score:" in lines[0], proc.stdout
    model = CNNKMeans.load(tmp_path / "model")
    assert len(model.history_) == 2 and model.cluster_centers_.shape == (3, 16)
    assert model.checkpoint_dir is None and not model.warm_start
    assert len(model.predict(read_channel(data / "validation"))) == 10
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch-000001", "epoch-000002"]
    assert not (tmp_path / "output" / "failure").exists()


@pytest.mark.parametrize("args, env_change, message", [
    (["--clusters", "many"], {}, "clusters must be an integer"),
    (["--no-such-thing", "1"], {}, "Unknown hyperparameter"),
    ([], {"SM_CHANNEL_TRAINING": "/nonexistent/training"}, "training channel is missing"),
])
def test_failures_write_the_failure_file(tmp_path, data, args, env_change, message):
    env = layout(tmp_path, data)
    env.update(env_change)
    proc = run_entry(env, [*TINY, "--epochs", "1", *args], cwd=tmp_path)
    assert proc.returncode != 0
    assert message in (tmp_path / "output" / "failure").read_text()
    assert message in proc.stderr
    assert not (tmp_path / "model").exists()


def test_bad_data_fails_with_the_file_named(tmp_path, data):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.csv").write_text("1,2,3,4\n5,oops,7,8\n")
    env = layout(tmp_path, data, training=bad)
    proc = run_entry(env, [*TINY, "--epochs", "1"], cwd=tmp_path)
    assert proc.returncode != 0
    failure = (tmp_path / "output" / "failure").read_text()
    assert "x.csv" in failure and "oops" in failure


def test_resume_after_interrupt(tmp_path, data):
    env = layout(tmp_path, data)
    first = run_entry(env, [*TINY, "--epochs", "2"], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # The "restarted" job asks for 4 epochs in all and finds 2 in the checkpoints.
    second = run_entry(env, [*TINY, "--epochs", "4"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Resuming from" in second.stdout and "(epoch 2)" in second.stdout
    assert [line.split()[1] for line in epoch_lines(second.stdout)] == ["3", "4"]
    model = CNNKMeans.load(tmp_path / "model")
    assert model.history_["epoch"].tolist() == [1, 2, 3, 4]
    assert model.history_["train_loss"].iloc[:2].tolist() == pytest.approx(
        [float(line.split()[3]) for line in epoch_lines(first.stdout)], rel=1e-6)


def test_incremental_training_from_a_model_archive(tmp_path, data):
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    env = layout(first_dir, data)
    proc = run_entry(env, [*TINY, "--epochs", "2"], cwd=first_dir)
    assert proc.returncode == 0, proc.stderr
    channel = tmp_path / "model-channel"
    channel.mkdir()
    with tarfile.open(channel / "model.tar.gz", "w:gz") as tar:
        for f in (first_dir / "model").iterdir():
            tar.add(f, arcname=f.name)
    second_dir = tmp_path / "second"
    second_dir.mkdir()
    env = layout(second_dir, data, model=channel)
    proc = run_entry(env, ["--epochs", "1", "--checkpoint-dir", "none"], cwd=second_dir)
    assert proc.returncode == 0, proc.stderr
    assert "Continuing the model" in proc.stdout
    before = CNNKMeans.load(first_dir / "model")
    after = CNNKMeans.load(second_dir / "model")
    assert after.history_["epoch"].tolist() == [1, 2, 3]
    assert after.history_.iloc[:2]["train_loss"].tolist() == before.history_[
        "train_loss"].tolist()
    assert (after.blocks, after.filters) == (2, 16)
    # A different encoder shape cannot continue that model.
    env = layout(tmp_path / "third", data, model=channel)
    proc = run_entry(env, ["--epochs", "1", "--filters", "8"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "filters=8" in (tmp_path / "third" / "output" / "failure").read_text()


def test_find_model_rejects_foreign_channel(tmp_path):
    (tmp_path / "junk.txt").write_text("x")
    with pytest.raises(TrainingError, match="no model"):
        find_model(tmp_path, tmp_path / "work")
    assert find_model(tmp_path / "absent", tmp_path / "work") is None


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path, data):
    env = layout(tmp_path, data)
    proc = run_entry(env, [*TINY, "--epochs", "2"], torchrun=2, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Rank 0 alone prints and saves.
    assert len(epoch_lines(proc.stdout)) == 2, proc.stdout
    assert proc.stdout.count("Model saved to") == 1
    model = CNNKMeans.load(tmp_path / "model")
    assert len(model.history_) == 2
    assert len(model.predict(read_channel(data / "validation"))) == 10
