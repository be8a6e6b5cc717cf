"""The built-in K-Means: the local container (train + inference) and the KMeans facade on moto."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from tsc_toolkit.clustering.kmeans import WebScaleKMeans
from tsc_toolkit.io.ndarray_file import read_ndarray_list
from tsc_toolkit.sagemaker.container import kmeans as kmeans_container
from tsc_toolkit.sagemaker.container.inference import RequestError
from tsc_toolkit.sagemaker.shared.recordio import CONTENT_TYPE as RECORDIO
from tsc_toolkit.sagemaker.shared.recordio import numpy_to_record_bytes, read_records

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
CENTERS = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 10.0, 10.0]], dtype=np.float32)


def blobs(n_per=40, seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([c + rng.normal(0, 0.3, size=(n_per, 3)) for c in CENTERS])
    return X.astype(np.float32)


def opt_ml(tmp_path, hps, files, content_type=""):
    base = tmp_path / "opt" / "ml"
    (base / "input" / "config").mkdir(parents=True)
    (base / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hps))
    (base / "input" / "config" / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": content_type}}))
    data = base / "input" / "data" / "train"
    data.mkdir(parents=True)
    for name, body in files.items():
        (data / name).write_bytes(body)
    return base


def sorted_centers(c):
    return c[np.lexsort(np.round(c, 0).T[::-1])]


# ------------------------------------------------------------------ local container

def test_train_on_recordio_shards_writes_genuine_model_algo_1(tmp_path, capsys):
    X = blobs()
    base = opt_ml(tmp_path, {"k": "3", "feature_dim": "3", "mini_batch_size": "50",
                             "force_dense": "True", "epochs": "2", "init_method": "kmeans++"},
                  {"matrix_0.pbr": numpy_to_record_bytes(X[:60]),
                   "matrix_1.pbr": numpy_to_record_bytes(X[60:])})
    assert kmeans_container.train(base) == 0
    (centers,) = read_ndarray_list((base / "model" / "model_algo-1").read_bytes())
    assert centers.shape == (3, 3) and centers.dtype == np.float32
    np.testing.assert_allclose(sorted_centers(centers), sorted_centers(CENTERS), atol=1.0)
    out = capsys.readouterr().out
    assert "#quality_metric: host=algo-1, train msd <loss>=" in out


def test_train_on_csv_with_label_size(tmp_path):
    X = blobs()
    csv = "".join("7," + ",".join(str(v) for v in row) + "\n" for row in X)
    base = opt_ml(tmp_path, {"k": "3", "feature_dim": "3"}, {"part.csv": csv.encode()},
                  content_type="text/csv;label_size=1")
    assert kmeans_container.train(base) == 0
    model = kmeans_container.model_fn(base / "model")
    np.testing.assert_allclose(sorted_centers(model.cluster_centers_), sorted_centers(CENTERS),
                               atol=1.0)


def test_test_channel_reports_eval_metrics(tmp_path, capsys):
    X = blobs()
    base = opt_ml(tmp_path, {"k": "3", "feature_dim": "3", "eval_metrics": '["msd", "ssd"]'},
                  {"m.pbr": numpy_to_record_bytes(X)})
    (base / "input" / "data" / "test").mkdir()
    (base / "input" / "data" / "test" / "t.pbr").write_bytes(numpy_to_record_bytes(X[::4]))
    assert kmeans_container.train(base) == 0
    out = capsys.readouterr().out
    assert "#quality_metric: host=algo-1, test msd <loss>=" in out
    assert "#quality_metric: host=algo-1, test ssd <loss>=" in out


@pytest.mark.parametrize("hps,files,message", [
    ({"k": "3", "feature_dim": "3", "kk": "1"}, None, "Unknown hyperparameter 'kk'"),
    ({"k": "one", "feature_dim": "3"}, None, "k='one'"),
    ({"k": "3"}, None, "feature_dim"),
    ({"k": "3", "feature_dim": "4"}, None, "feature_dim=4"),
    ({"k": "3", "feature_dim": "3", "local_lloyd_tol": "2"}, None, "local_lloyd_tol"),
    ({"k": "3", "feature_dim": "3"}, {"bad.csv": b"a,b,c\n"}, "not a number"),
])
def test_bad_jobs_write_the_failure_file(tmp_path, hps, files, message):
    base = opt_ml(tmp_path, hps, files or {"m.pbr": numpy_to_record_bytes(blobs(5))},
                  content_type="text/csv" if files else "")
    assert kmeans_container.train(base) == 1
    assert message in (base / "output" / "failure").read_text()
    assert not (base / "model" / "model_algo-1").exists()


def test_module_runs_as_the_container_command(tmp_path):
    base = opt_ml(tmp_path, {"k": "3", "feature_dim": "3"},
                  {"m.pbr": numpy_to_record_bytes(blobs(10))})
    # the local runner's environment: SM_* variables, no /opt/ml
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "SAGEMAKER_BASE_DIR": str(tmp_path / "elsewhere"),
           "SM_INPUT_CONFIG_DIR": str(base / "input" / "config"),
           "SM_CHANNEL_TRAIN": str(base / "input" / "data" / "train"),
           "SM_MODEL_DIR": str(tmp_path / "model"),
           "SM_OUTPUT_FAILURE": str(tmp_path / "failure")}
    proc = subprocess.run([sys.executable, "-m", "tsc_toolkit.sagemaker.container.kmeans",
                           "train"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "model" / "model_algo-1").is_file()
    assert "train msd" in proc.stdout


@pytest.fixture(scope="module")
def km():
    model = WebScaleKMeans(k=3, device="cpu")
    model.cluster_centers_ = CENTERS.copy()
    return model


ROWS = np.array([[0.1, 0.0, 0.0], [9.0, 10.0, 0.0], [0.0, 10.0, 12.0]], dtype=np.float32)


@pytest.mark.parametrize("ctype,body", [
    ("text/csv", "0.1,0,0\n9,10,0\n0,10,12\n"),
    ("application/json", json.dumps({"instances": [{"features": r} for r in ROWS.tolist()]})),
    ("application/jsonlines", "".join(json.dumps({"features": r}) + "\n" for r in ROWS.tolist())),
    (RECORDIO, numpy_to_record_bytes(ROWS)),
])
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines", "text/csv",
                                    RECORDIO])
def test_container_inference_formats(km, ctype, body, accept):
    out, out_type = kmeans_container.invoke(km, body, ctype, accept)
    assert out_type == accept
    if accept == RECORDIO:
        recs = read_records(out)
        got = [(r.label["closest_cluster"].float32_tensor.values[0],
                r.label["distance_to_cluster"].float32_tensor.values[0]) for r in recs]
    elif accept == "text/csv":
        got = [tuple(map(float, line.split(","))) for line in out.splitlines()]
    else:
        preds = json.loads(out)["predictions"] if accept == "application/json" else \
            [json.loads(line) for line in out.splitlines()]
        assert all(isinstance(p["closest_cluster"], float) for p in preds)
        got = [(p["closest_cluster"], p["distance_to_cluster"]) for p in preds]
    assert [c for c, _ in got] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose([d for _, d in got], [0.1, 1.0, 2.0], rtol=1e-5)


def test_container_data_features_values_form(km):
    body = json.dumps({"data": {"features": {"values": [9.0, 10.0, 0.0]}}})
    out, _ = kmeans_container.invoke(km, body, "application/json", "application/json")
    assert json.loads(out)["predictions"][0]["closest_cluster"] == 1.0


@pytest.mark.parametrize("ctype,accept,body,status", [
    ("image/png", "application/json", "1,2,3", 415),
    ("text/csv", "image/png", "1,2,3", 406),
    ("text/csv", "application/json", "", 400),
    ("text/csv", "application/json", "1,2\n", 400),          # wrong feature_dim
    ("text/csv", "application/json", "1,x,3\n", 400),
    (RECORDIO, "application/json", b"not recordio", 400),
])
def test_container_bad_requests(km, ctype, accept, body, status):
    with pytest.raises(RequestError) as info:
        kmeans_container.invoke(km, body, ctype, accept)
    assert info.value.status == status


# ------------------------------------------------------------------ facade on moto

def test_standalone_emulator_runs_kmeans_jobs_in_process(aws_env, tmp_path):
    """LocalSageMaker alone (no offline harness) trains, serves and reports metrics."""
    import boto3

    from tsc_toolkit.sagemaker import KMeans
    from tsc_toolkit.sagemaker.local.serving import LocalSageMaker

    boto_session = boto3.Session(region_name="us-east-1")
    with LocalSageMaker(boto_session, tmp_path / "local") as emulator:
        kmeans = KMeans(role=ROLE, instance_count=1, instance_type="ml.c5.xlarge", k=3,
                        boto_session=boto_session, poll=0.01,
                        image_uri="382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1")
        kmeans.fit(kmeans.record_set(blobs(10)), logs=False, job_name="standalone")
        assert emulator.training_jobs["standalone"].status == "Completed"
        desc = kmeans.describe()
        assert desc["TrainingJobStatus"] == "Completed"
        assert [m["MetricName"] for m in desc["FinalMetricDataList"]] == ["train:msd"]
        records = kmeans.deploy(1, "ml.m5.large", endpoint_name="standalone").predict(ROWS)
        assert len({r.label["closest_cluster"].float32_tensor.values[0] for r in records}) == 3


def test_quality_metrics_from_the_container_log():
    from tsc_toolkit.sagemaker.local.serving import quality_metrics

    log = ("#quality_metric: host=algo-1, train msd <loss>=0.5\n"
           "#quality_metric: host=algo-1, test ssd <loss>=12.25\nother line\n")
    assert [(m["MetricName"], m["Value"]) for m in quality_metrics(log)] == [
        ("train:msd", 0.5), ("test:ssd", 12.25)]


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto's server on loopback with the toolkit's offline harness: training jobs (the
    built-in K-Means included) run with the local runner before CreateTrainingJob returns, and
    endpoints and transform jobs are answered by the real handlers."""
    from tsc_toolkit.sagemaker import offline_aws

    with offline_aws(run_jobs="sync", workdir=tmp_path_factory.mktemp("offline-jobs")) as aws:
        yield aws


@pytest.fixture
def session(aws):
    return aws.boto_session


def make_kmeans(session, **kwargs):
    from tsc_toolkit.sagemaker import KMeans

    params = dict(role=ROLE, instance_count=2, instance_type="ml.c5.xlarge", k=3,
                  boto_session=session, poll=0.01, epochs=2)
    params.update(kwargs)
    return KMeans(**params)


def test_record_set_writes_shards_and_manifest(session):
    X = blobs(10)
    kmeans = make_kmeans(session)
    records = kmeans.record_set(X, labels=np.arange(30, dtype=np.float32))
    assert records.channel == "train" and records.num_records == 30 and records.feature_dim == 3
    assert records.s3_data_type == "ManifestFile"
    assert records.s3_data.startswith("s3://sagemaker-us-east-1-123456789012/"
                                      "sagemaker-record-sets/KMeans-")
    assert records.s3_data.endswith("/.amazon.manifest")
    s3 = session.client("s3")
    bucket, key = records.s3_data[5:].split("/", 1)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    prefix = key[: -len(".amazon.manifest")]
    assert manifest == [{"prefix": f"s3://{bucket}/{prefix}"}, "matrix_0.pbr", "matrix_1.pbr"]
    shard1 = s3.get_object(Bucket=bucket, Key=prefix + "matrix_1.pbr")["Body"].read()
    assert shard1 == numpy_to_record_bytes(X[15:], np.arange(15, 30, dtype=np.float32))
    assert records.data_channel()["DataSource"]["S3DataSource"]["S3DataDistributionType"] == \
        "ShardedByS3Key"


def test_facade_from_record_set_to_predict_and_attach(session, capsys):
    from tsc_toolkit.sagemaker import KMeans

    X = blobs()
    kmeans = make_kmeans(session, init_method="kmeans++", eval_metrics=["msd", "ssd"])
    kmeans.fit(kmeans.record_set(X), mini_batch_size=50, job_name="kmeans-job-1")
    assert kmeans.hyperparameters() == {
        "force_dense": "True", "k": "3", "init_method": "kmeans++", "epochs": "2",
        "eval_metrics": '["msd", "ssd"]', "feature_dim": "3", "mini_batch_size": "50"}
    desc = session.client("sagemaker").describe_training_job(TrainingJobName="kmeans-job-1")
    assert desc["AlgorithmSpecification"]["TrainingImage"] == \
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
    assert desc["HyperParameters"] == kmeans.hyperparameters()
    assert desc["ResourceConfig"]["InstanceCount"] == 2
    (channel,) = desc["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"]["S3DataType"] == "ManifestFile"
    assert desc["TrainingJobStatus"] == "Completed"
    assert {m["MetricName"] for m in desc["FinalMetricDataList"]} == {"train:msd"}
    assert "train:msd" in capsys.readouterr().err

    # the artifact is a genuine model.tar.gz holding model_algo-1
    assert kmeans.model_data.endswith("kmeans-job-1/output/model.tar.gz")
    bucket, key = kmeans.model_data[5:].split("/", 1)
    tar_bytes = session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["model_algo-1"]
        (centers,) = read_ndarray_list(tar.extractfile("model_algo-1").read())
    np.testing.assert_allclose(sorted_centers(centers), sorted_centers(CENTERS), atol=1.0)

    predictor = kmeans.deploy(1, "ml.m5.large", endpoint_name="kmeans-endpoint")
    result = predictor.predict(ROWS)
    ref = np.argmin(((ROWS[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    assert [r.label["closest_cluster"].float32_tensor.values[0] for r in result] == \
        ref.astype(np.float32).tolist()
    dists = [r.label["distance_to_cluster"].float32_tensor.values[0] for r in result]
    np.testing.assert_allclose(dists, np.linalg.norm(ROWS - centers[ref], axis=1), rtol=1e-4)

    # attach rebuilds the estimator from the job
    again = KMeans.attach("kmeans-job-1", boto_session=session, poll=0.01)
    assert again.hyperparameters() == kmeans.hyperparameters()
    assert again.model_data == kmeans.model_data
    assert (again.instance_count, again.instance_type, again.role) == (2, "ml.c5.xlarge", ROLE)

    predictor.delete_endpoint()
    with pytest.raises(Exception, match="kmeans-endpoint"):
        session.client("sagemaker").describe_endpoint(EndpointName="kmeans-endpoint")


@pytest.fixture(scope="module")
def trained(aws):
    """One small built-in K-Means job and its endpoint, shared by the tests below."""
    kmeans = make_kmeans(aws.boto_session, instance_count=1)
    kmeans.fit(kmeans.record_set(blobs(10)), mini_batch_size=30, logs=False)
    kmeans.deploy(1, "ml.m5.large", endpoint_name="shared-kmeans")
    return kmeans


@pytest.mark.parametrize("fmt", ["text/csv", "application/json", "application/jsonlines"])
def test_predictor_text_formats(trained, fmt):
    from tsc_toolkit.sagemaker.builtin_kmeans import KMeansPredictor

    pred = KMeansPredictor("shared-kmeans", boto_session=trained.boto_session, content_type=fmt,
                           accept=fmt)
    recs = pred.predict(ROWS)
    assert len(recs) == 3
    assert len({r.label["closest_cluster"].float32_tensor.values[0] for r in recs}) == 3


def test_transformer_over_several_files(trained):
    kmeans, session = trained, trained.boto_session
    s3 = session.client("s3")
    bucket = kmeans.default_bucket()
    for i in range(3):
        body = "".join(",".join(str(v) for v in row) + "\n" for row in ROWS[: i + 1])
        s3.put_object(Bucket=bucket, Key=f"kin/part-{i}.csv", Body=body.encode())
    transformer = kmeans.transformer(1, "ml.m5.large", strategy="MultiRecord",
                                     assemble_with="Line", accept="application/jsonlines",
                                     output_path=f"s3://{bucket}/kout")
    result = transformer.transform(f"s3://{bucket}/kin/", content_type="text/csv",
                                   split_type="Line")
    outputs = result.outputs()
    assert sorted(outputs) == ["part-0.csv.out", "part-1.csv.out", "part-2.csv.out"]
    for i in range(3):
        lines = outputs[f"part-{i}.csv.out"].decode().splitlines()
        assert len(lines) == i + 1
        assert all("closest_cluster" in json.loads(line) for line in lines)


def test_failed_training_job_raises_with_reason(session):
    from tsc_toolkit.sagemaker.builtin_kmeans import JobFailedError

    kmeans = make_kmeans(session, instance_count=1, k=50)
    with pytest.raises(JobFailedError, match="fewer than k=50"):
        kmeans.fit(kmeans.record_set(blobs(5)), logs=False, job_name="too-few")
    desc = session.client("sagemaker").describe_training_job(TrainingJobName="too-few")
    assert desc["TrainingJobStatus"] == "Failed"


def test_constructor_validation_and_deprecated_aliases(session):
    with pytest.warns(DeprecationWarning) as record:
        km = make_kmeans(session, instance_count=None, instance_type=None,
                         train_instance_count=3, train_instance_type="ml.c5.2xlarge")
    assert sorted(str(w.message).split()[0] for w in record) == ["train_instance_count",
                                                                  "train_instance_type"]
    assert (km.instance_count, km.instance_type) == (3, "ml.c5.2xlarge")
    with pytest.raises(ValueError, match="k=1"):
        make_kmeans(session, k=1)
    with pytest.raises(ValueError, match="init_method"):
        make_kmeans(session, init_method="best")
    with pytest.raises(ValueError, match="eval_metrics"):
        make_kmeans(session, eval_metrics=["mae"])
    with pytest.raises(ValueError, match="tol"):
        make_kmeans(session, tol=3)
    with pytest.raises(TypeError, match="nonsense"):
        make_kmeans(session, nonsense=1)
    with pytest.raises(ValueError, match="instance_count"):
        make_kmeans(session, instance_count=None)
    km = make_kmeans(session, max_iterations=10, tol=0.01, num_trials=2,
                     local_init_method="random", half_life_time_size=5, center_factor=4)
    assert km.hyperparameters() == {
        "force_dense": "True", "k": "3", "local_lloyd_max_iter": "10", "local_lloyd_tol": "0.01",
        "local_lloyd_num_trials": "2", "local_lloyd_init_method": "random",
        "half_life_time_size": "5", "epochs": "2", "extra_center_factor": "4"}


def test_missing_training_data_fails_the_job_not_the_call(session):
    from tsc_toolkit.sagemaker.builtin_kmeans import JobFailedError, RecordSet

    kmeans = make_kmeans(session, instance_count=1)
    bucket = kmeans.default_bucket()
    records = RecordSet(f"s3://{bucket}/nothing/.amazon.manifest", num_records=10,
                        feature_dim=3)
    with pytest.raises(JobFailedError, match="Failed"):
        kmeans.fit(records, logs=False, job_name="no-data")
    desc = session.client("sagemaker").describe_training_job(TrainingJobName="no-data")
    assert desc["TrainingJobStatus"] == "Failed" and desc["FailureReason"]


def test_deploy_then_transformer_creates_the_sagemaker_model_once(session):
    """SageMaker refuses a second CreateModel of the same name (moto does not): deploy() then
    transformer() must not send one, and a model made earlier (by an attached estimator) is used."""
    from botocore.awsrequest import AWSResponse

    from tsc_toolkit.sagemaker import KMeans

    created = []

    def create_model(params=None, **kwargs):
        name = json.loads(params["body"])["ModelName"]
        created.append(name)
        if created.count(name) > 1:  # what SageMaker answers
            message = f'Cannot create already existing model "arn:aws:sagemaker:{name}".'
            return (AWSResponse("https://api.sagemaker", 400, {}, None),
                    {"Error": {"Code": "ValidationException", "Message": message},
                     "ResponseMetadata": {"HTTPStatusCode": 400}})
        return None

    session.events.register("before-call.sagemaker.CreateModel", create_model)
    kmeans = make_kmeans(session, instance_count=1)
    kmeans.fit(kmeans.record_set(blobs(10)), logs=False, job_name="kmeans-once")
    predictor = kmeans.deploy(1, "ml.m5.large", endpoint_name="kmeans-once-ep")
    transformer = kmeans.transformer(1, "ml.m5.large", accept="application/jsonlines",
                                     output_path=f"s3://{kmeans.default_bucket()}/once-out")
    assert created == ["kmeans-once"]
    assert predictor.model_name == transformer.model_name == "kmeans-once"
    assert kmeans.create_model() is kmeans.create_model()

    again = KMeans.attach("kmeans-once", boto_session=session, poll=0.01)
    s3 = session.client("s3")
    rows = "".join(",".join(str(v) for v in row) + "\n" for row in ROWS)
    s3.put_object(Bucket=kmeans.default_bucket(), Key="once-in/rows.csv", Body=rows.encode())
    result = again.transformer(1, "ml.m5.large", accept="application/jsonlines",
                               output_path=f"s3://{kmeans.default_bucket()}/once-out").transform(
        f"s3://{kmeans.default_bucket()}/once-in/", content_type="text/csv", split_type="Line")
    assert created == ["kmeans-once", "kmeans-once"]  # refused, and the existing one was used
    assert len(result.outputs()["rows.csv.out"].decode().splitlines()) == len(ROWS)


def test_transformer_on_recordio_input(trained):
    """SplitType=RecordIO: each record of a .pbr file is sent as its own recordIO record."""
    session = trained.boto_session
    bucket = trained.default_bucket()
    session.client("s3").put_object(Bucket=bucket, Key="kpb/rows.pbr",
                                    Body=numpy_to_record_bytes(ROWS))
    transformer = trained.transformer(1, "ml.m5.large", strategy="SingleRecord",
                                      assemble_with="Line", accept="text/csv",
                                      output_path=f"s3://{bucket}/kpb-out")
    result = transformer.transform(f"s3://{bucket}/kpb/", content_type=RECORDIO,
                                   split_type="RecordIO")
    lines = result.outputs()["rows.pbr.out"].decode().splitlines()
    assert len(lines) == 3
    assert len({line.split(",")[0] for line in lines}) == 3
