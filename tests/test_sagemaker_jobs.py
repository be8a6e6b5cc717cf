"""Training jobs from the notebook API to a trained model, against moto's real server on loopback.

The SageMaker SDK v3 creates the jobs in moto; the local runner executes them (the packaged
toolkit source, the v3 ``sm_drivers`` layout, torchrun for DDP); the handle reads status, logs
and metrics back through the AWS APIs.
"""

import io
import json
import re
import tarfile
import time

import botocore.exceptions
import numpy as np
import pytest

from tsc_toolkit.hyperparameters import METRIC_DEFINITIONS, HyperparameterError
from tsc_toolkit.io.csvio import write_csv
from tsc_toolkit.io.datasets import make_series
from tsc_toolkit.sagemaker import attach, fit, offline_aws
from tsc_toolkit.sagemaker.training_job import TrainingJobFailed

TINY = {"clusters": 3, "blocks": 2, "filters": 16, "reduced-size": 16, "output-size": 16,
        "epochs": 2, "random-state": 0, "device": "cpu"}
CPU = "ml.m5.xlarge"
TIMEOUT = 240


@pytest.fixture(scope="module")
def aws():
    with offline_aws() as aws:
        requests = {}

        def record(params, **kwargs):
            body = json.loads(params["body"])
            requests[body["TrainingJobName"]] = body

        aws.register("before-call.sagemaker.CreateTrainingJob", record,
                     unique_id="test-record-create")
        aws.requests = requests
        yield aws


@pytest.fixture(scope="module")
def series():
    X, y = make_series(60, n_clusters=3, length=40, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def trained(aws, series):
    X, _ = series
    job = fit(X[:50], validation=X[50:], hyperparameters=TINY, instance_type=CPU,
              tags={"project": "tsc"})
    job.wait(poll=0.5, timeout=TIMEOUT)
    return job


def s3_text(aws, uri):
    bucket, key = uri[5:].split("/", 1)
    return aws.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def driver_files(aws, request):
    channel = next(c for c in request["InputDataConfig"] if c["ChannelName"] == "sm_drivers")
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    return (s3_text(aws, uri + "/sm_train.sh").decode(),
            json.loads(s3_text(aws, uri + "/distributed.json")))


def test_single_process_job_end_to_end(aws, series, trained):
    X, _ = series
    assert trained.status == "Completed" and trained.failure_reason is None
    assert trained.billable_seconds >= 1 and trained.elapsed_seconds > 0
    # the request as the SDK sent it
    req = aws.requests[trained.name]
    spec = req["AlgorithmSpecification"]
    assert spec["TrainingImage"].endswith("/pytorch-training:2.8.0-cpu-py312")
    assert spec["MetricDefinitions"] == METRIC_DEFINITIONS
    assert req["ResourceConfig"]["InstanceType"] == CPU
    assert req["ResourceConfig"]["InstanceCount"] == 1
    assert req["HyperParameters"] == {k: str(v) for k, v in TINY.items()}
    assert [c["ChannelName"] for c in req["InputDataConfig"]] == [
        "training", "validation", "code", "sm_drivers"]
    assert "CheckpointConfig" not in req and "EnableManagedSpotTraining" not in req
    assert {"Key": "project", "Value": "tsc"} in req["Tags"]
    script, distributed = driver_files(aws, req)
    assert "torchrun_driver" not in script and distributed == {}
    # what the job printed and what the handle reads back
    logs = trained.logs(tail=None)
    assert "epoch: 2 train_loss:" in logs and "valid_score:" in logs
    metrics = trained.metrics()
    assert metrics["epoch"].tolist() == [1, 2]
    assert {"train_loss", "train_score", "valid_loss", "valid_score"} <= set(metrics)
    assert np.isfinite(metrics["train_loss"]).all()
    final = {m["MetricName"]: m["Value"] for m in trained.describe()["FinalMetricDataList"]}
    assert final["epoch"] == 2
    assert final["train_loss"] == pytest.approx(metrics["train_loss"].iloc[-1])
    # the model, downloaded and opened
    model = trained.model()
    assert model.history_["train_loss"].tolist() == pytest.approx(
        metrics["train_loss"].tolist(), rel=1e-6)
    labels = model.predict(X)
    assert labels.shape == (60,) and set(labels) <= {0, 1, 2}
    assert trained.model_data.endswith(f"/{trained.name}/output/model.tar.gz")


def test_attach_rebuilds_the_handle(aws, trained):
    again = attach(trained.name)
    assert again.status == "Completed" and again.model_data == trained.model_data
    assert again.metrics()["epoch"].tolist() == [1, 2]
    with pytest.raises(botocore.exceptions.ClientError):
        attach("no-such-job")


def test_request_shape_for_spot_multi_gpu(aws, series):
    X, _ = series
    aws.run_jobs = False  # record only: nobody runs 8 GPU processes here
    try:
        job = fit(X, hyperparameters=TINY, instance_type="ml.g5.12xlarge", instance_count=2,
                  spot=True, max_run=3600, max_wait=7200,
                  checkpoint_s3_uri=f"s3://{aws.bucket}/ck/run-1")
    finally:
        aws.run_jobs = "background"
    req = aws.requests[job.name]
    assert req["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/pytorch-training:2.8.0-gpu-py312")
    assert req["ResourceConfig"]["InstanceType"] == "ml.g5.12xlarge"
    assert req["ResourceConfig"]["InstanceCount"] == 2
    assert req["EnableManagedSpotTraining"] is True
    assert req["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600,
                                        "MaxWaitTimeInSeconds": 7200}
    assert req["CheckpointConfig"] == {"S3Uri": f"s3://{aws.bucket}/ck/run-1",
                                       "LocalPath": "/opt/ml/checkpoints"}
    script, distributed = driver_files(aws, req)
    assert "torchrun_driver.py" in script
    metrics = job.metrics()  # nothing ran: no rows, but the columns a monitor plots
    assert len(metrics) == 0 and {"epoch", "train_loss", "valid_score"} <= set(metrics)
    assert distributed["process_count_per_node"] is None  # one per GPU in the container


def test_bad_hyperparameter_is_refused_before_launch(aws, series):
    X, _ = series
    before = len(aws.requests)
    with pytest.raises(HyperparameterError, match="kernel-size"):
        fit(X, hyperparameters={"kernel-size": "big"}, instance_type=CPU)
    assert len(aws.requests) == before


def test_failing_jobs_show_their_reason(aws, series):
    s3 = aws.boto_session.client("s3")
    s3.put_object(Bucket=aws.bucket, Key="bad/train.csv", Body=b"1,2,3,4\n5,oops,7,8\n")
    job = fit(f"s3://{aws.bucket}/bad", hyperparameters=TINY, instance_type=CPU)
    with pytest.raises(TrainingJobFailed, match="oops"):
        job.wait(poll=0.5, timeout=TIMEOUT)
    assert job.status == "Failed"
    assert job.failure_reason.startswith("AlgorithmError: ") and "train.csv" in \
        job.failure_reason
    with pytest.raises(TrainingJobFailed):
        job.model()
    # A job created by other means (plain boto3, no code channel: the toolkit's own
    # entry point) with a hyperparameter the launcher would have refused.
    sm = aws.boto_session.client("sagemaker")
    sm.create_training_job(
        TrainingJobName="bad-hyperparameter", RoleArn=aws.role,
        AlgorithmSpecification={"TrainingImage": "tsc-toolkit:latest",
                                "TrainingInputMode": "File"},
        HyperParameters={"clusters": "many"},
        InputDataConfig=[{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{aws.bucket}/bad"}}}],
        OutputDataConfig={"S3OutputPath": f"s3://{aws.bucket}/out"},
        ResourceConfig={"InstanceType": CPU, "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600})
    other = attach("bad-hyperparameter").wait(poll=0.5, timeout=TIMEOUT,
                                              raise_on_failure=False)
    assert other.status == "Failed"
    assert "clusters must be an integer" in other.failure_reason


def test_two_hosts_ddp(aws, series):
    X, _ = series
    job = fit(X, hyperparameters=TINY, instance_type=CPU, instance_count=2,
              processes_per_host=1)
    job.wait(poll=0.5, timeout=TIMEOUT)
    script, distributed = driver_files(aws, aws.requests[job.name])
    assert "torchrun_driver.py" in script and distributed["process_count_per_node"] == 1
    logs = job.logs(tail=None)
    assert logs.count("Model saved to") == 1  # rank 0 only
    assert job.metrics()["epoch"].tolist() == [1, 2]
    model = job.model()
    assert len(model.history_) == 2 and len(model.predict(X)) == 60


def _wait_for(predicate, timeout=TIMEOUT):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("condition not reached in time")


def test_resume_after_interrupt(aws, series):
    X, _ = series
    ck = f"s3://{aws.bucket}/checkpoints/resume-test"
    long = dict(TINY, epochs=500)
    first = fit(X, hyperparameters=long, instance_type=CPU, checkpoint_s3_uri=ck)
    _wait_for(lambda: "epoch: 2 " in first.logs(tail=None) or first.status != "InProgress")
    assert first.status == "InProgress", first.logs()
    first.stop()  # a spot interruption, as far as the job can tell
    first.wait(poll=0.5, timeout=TIMEOUT, raise_on_failure=False)
    assert first.status == "Stopped"
    keys = [o["Key"] for o in aws.boto_session.client("s3").list_objects_v2(
        Bucket=aws.bucket, Prefix="checkpoints/resume-test/")["Contents"]]
    done = max(int(m.group(1)) for k in keys if (m := re.search(r"/epoch-(\d+)/", k)))
    assert 2 <= done < 500
    data_uri = aws.requests[first.name]["InputDataConfig"][0]["DataSource"][
        "S3DataSource"]["S3Uri"]
    second = fit(data_uri, hyperparameters=dict(TINY, epochs=done + 1), instance_type=CPU,
                 checkpoint_s3_uri=ck)
    second.wait(poll=0.5, timeout=TIMEOUT)
    logs = second.logs(tail=None)
    assert f"(epoch {done})" in logs
    assert second.metrics()["epoch"].tolist() == [done + 1]
    assert second.model().history_["epoch"].tolist() == list(range(1, done + 2))


def test_incremental_training_from_an_earlier_job(aws, series, trained):
    X, _ = series
    job = fit(X[:50], hyperparameters={"epochs": 1, "device": "cpu"}, instance_type=CPU,
              warm_start_from=trained.name)
    job.wait(poll=0.5, timeout=TIMEOUT)
    channels = {c["ChannelName"]: c for c in aws.requests[job.name]["InputDataConfig"]}
    assert channels["model"]["DataSource"]["S3DataSource"]["S3Uri"] == trained.model_data
    assert "Continuing the model" in job.logs(tail=None)
    before, after = trained.model(), job.model()
    assert after.history_["epoch"].tolist() == [1, 2, 3]
    assert after.history_["train_loss"].iloc[:2].tolist() == pytest.approx(
        before.history_["train_loss"].tolist())
    # from a model URI too, given as a handle's model_data
    uri_job = fit(X[:50], hyperparameters={"epochs": 1, "device": "cpu"}, instance_type=CPU,
                  warm_start_from=job.model_data)
    assert uri_job.wait(poll=0.5, timeout=TIMEOUT).model().history_["epoch"].tolist() == [
        1, 2, 3, 4]


def test_csv_folder_upload(aws, series, tmp_path):
    X, _ = series
    folder = tmp_path / "train"
    folder.mkdir()
    write_csv(X[:30], folder / "a.csv")
    buf = io.StringIO()
    write_csv(X[30:], buf)
    (folder / "b.csv").write_text(buf.getvalue())
    aws.run_jobs = False
    try:
        job = fit(folder, hyperparameters=TINY, instance_type=CPU)
    finally:
        aws.run_jobs = "background"
    uri = aws.requests[job.name]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, prefix = uri[5:].split("/", 1)
    keys = sorted(o["Key"].rsplit("/", 1)[-1] for o in aws.boto_session.client(
        "s3").list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    assert keys == ["a.csv", "b.csv"]


def test_local_runner_runs_a_definition_without_aws(series, tmp_path):
    from tsc_toolkit.cnn_kmeans import CNNKMeans
    from tsc_toolkit.sagemaker.local.runner import run_training_job

    X, _ = series
    (tmp_path / "train").mkdir()
    write_csv(X, tmp_path / "train" / "train.csv")
    lines = []
    definition = {
        "TrainingJobName": "local-only",
        "AlgorithmSpecification": {"TrainingImage": "tsc-toolkit:latest"},
        "HyperParameters": {k: str(v) for k, v in TINY.items()},
        "InputDataConfig": [{"ChannelName": "training", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": (tmp_path / "train").as_uri()}}}],
        "OutputDataConfig": {"S3OutputPath": (tmp_path / "out").as_uri()},
        "CheckpointConfig": {"S3Uri": (tmp_path / "ck").as_uri()},
        "ResourceConfig": {"InstanceType": CPU, "InstanceCount": 1},
    }
    run = run_training_job(definition, workdir=tmp_path / "work", on_line=lines.append)
    assert run.status == "Completed", run.log_text()
    assert run.command[1:3] == ["-m", "tsc_toolkit.sagemaker.train"]
    assert any(line.startswith("epoch: 2 ") for line in lines)
    archive = tmp_path / "out" / "local-only" / "output" / "model.tar.gz"
    assert run.model_artifact == archive.as_uri()
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "model", filter="data")
    assert len(CNNKMeans.load(tmp_path / "model").history_) == 2
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["epoch-000001",
                                                                   "epoch-000002"]
    env = json.loads((tmp_path / "work" / "opt" / "ml" / "input" / "config" /
                      "inputdataconfig.json").read_text())
    assert list(env) == ["training"]


def test_builtin_kmeans_image_runs_the_kmeans_container(tmp_path):
    from tsc_toolkit.sagemaker.local import runner as local_runner

    layout = local_runner._Layout(tmp_path / "opt" / "ml")
    desc = {"AlgorithmSpecification": {
        "TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"},
        "HyperParameters": {"k": "3", "feature_dim": "4"}}
    argv, cwd, _, dist = local_runner._program(desc, layout, None)
    assert argv == ["-m", "tsc_toolkit.sagemaker.container.kmeans", "train"]
    assert cwd == layout.root and dist == {}
