"""Deploy, predict, delete and batch transform of CNN-KMeans models, offline against moto."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from tsc_toolkit.sagemaker.deploy import (
    EndpointError,
    JobFailedError,
    Predictor,
    batch_predict,
    deploy,
    package_model,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "sagemaker-us-east-1-123456789012"



@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir()


@pytest.fixture(scope="module")
def local_model(model_dir):
    from tsc_toolkit import CNNKMeans

    return CNNKMeans.load(model_dir, device="cpu")


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto's server on loopback with the toolkit's offline harness, whose endpoints and
    transform jobs are answered by the real handlers (tsc_toolkit.sagemaker.local.serving)."""
    from tsc_toolkit.sagemaker import offline_aws

    with offline_aws(run_jobs="sync", workdir=tmp_path_factory.mktemp("offline-jobs")) as aws:
        yield aws


@pytest.fixture
def session(aws):
    """The harness's session, on a clean slate of AWS resources for each test."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{aws.endpoint_url}/moto-api/reset",
                                                  method="POST"), timeout=30).read()
    aws.boto_session.client("s3").create_bucket(Bucket=aws.bucket)
    return aws.boto_session


class JobHandle:
    """What a training job handle exposes to deploy(): the S3 URI of its model.tar.gz, and
    optionally its session and describe() (for the role)."""

    def __init__(self, model_data, boto_session=None):
        self.model_data = model_data
        if boto_session is not None:
            self.boto_session = boto_session

    def describe(self):
        return {"RoleArn": ROLE, "TrainingJobStatus": "Completed"}


def upload_model(session, model_dir, key="jobs/train-1/output/model.tar.gz"):
    s3 = session.client("s3")
    s3.create_bucket(Bucket="artifacts")
    archive = model_dir.parent / "sm-serve-artifact.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for f in sorted(model_dir.iterdir()):
            tar.add(f, arcname=f.name)
    s3.upload_file(str(archive), "artifacts", key)
    return f"s3://artifacts/{key}"


def series(rng, n=7):
    X = np.full((n, 1, 30), np.nan, dtype=np.float32)
    for i in range(n):
        length = int(rng.integers(5, 31))
        X[i, 0, :length] = rng.normal(size=length)
    X[0, 0, 2] = np.nan  # a missing value inside a series
    return X


def test_package_model_layout(model_dir, tmp_path):
    path = package_model(model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
        shim = tar.extractfile("code/inference.py").read().decode()
        reqs = tar.extractfile("code/requirements.txt").read().decode()
    assert {"config.json", "weights.safetensors", "code/inference.py",
            "code/requirements.txt", "code/tsc_toolkit/__init__.py",
            "code/tsc_toolkit/sagemaker/container/inference.py", "code/tsc_toolkit/cnn_kmeans.py"} <= names
    assert not any("__pycache__" in n for n in names)
    assert "from tsc_toolkit.sagemaker.container.inference import" in shim and "model_fn" in shim
    assert "safetensors" in reqs


def test_deploy_job_handle_predict_and_delete(session, model_dir, local_model, rng):
    job = JobHandle(upload_model(session, model_dir))
    predictor = deploy(job, "ml.m5.large", role=ROLE, endpoint_name="cnn-ep", boto_session=session,
                       poll=0.01)
    assert isinstance(predictor, Predictor) and predictor.endpoint_name == "cnn-ep"
    sm = session.client("sagemaker")
    container = sm.describe_model(ModelName="cnn-ep")["PrimaryContainer"]
    assert container["Image"] == \
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert container["ModelDataUrl"] == f"s3://{BUCKET}/cnn-ep/model.tar.gz"
    config = sm.describe_endpoint_config(EndpointConfigName="cnn-ep")["ProductionVariants"][0]
    assert (config["InstanceType"], config["InitialInstanceCount"]) == ("ml.m5.large", 1)

    X = series(rng)
    df = predictor.predict(X)
    ref = local_model.assign(X)
    assert list(df.columns) == ["label", "distance", "embedding"]
    assert df["label"].tolist() == ref.closest_cluster.tolist()
    np.testing.assert_allclose(df["distance"], ref.distance_to_cluster, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.stack(df["embedding"]), ref.embedding, rtol=1e-5, atol=1e-6)

    # a bad request is a 4xx from the container, and the endpoint keeps answering
    with pytest.raises(EndpointError) as info:
        predictor.invoke("1,abc,3\n", content_type="text/csv")
    assert info.value.status == 400 and "not a number" in str(info.value)
    assert len(predictor.predict(X[:2])) == 2

    predictor.delete_endpoint()
    for call, kwargs in ((sm.describe_endpoint, {"EndpointName": "cnn-ep"}),
                         (sm.describe_endpoint_config, {"EndpointConfigName": "cnn-ep"}),
                         (sm.describe_model, {"ModelName": "cnn-ep"})):
        with pytest.raises(Exception, match="cnn-ep"):
            call(**kwargs)


def test_deploy_a_fitted_model_object(session, local_model, rng):
    predictor = deploy(local_model, role=ROLE, endpoint_name="obj-ep", boto_session=session,
                       poll=0.01)
    X = series(rng, 7)
    assert predictor.predict(X)["label"].tolist() == local_model.predict(X).tolist()
    # many series go in several requests, and come back in order
    calls = []
    predictor._runtime.meta.events.register(
        "before-parameter-build.sagemaker-runtime.InvokeEndpoint",
        lambda params, **kwargs: calls.append(params["EndpointName"]))
    df = predictor.predict(X, max_series_per_request=3)
    assert calls == ["obj-ep"] * 3
    np.testing.assert_allclose(np.stack(df["embedding"]), local_model.transform(X), rtol=1e-5,
                               atol=1e-6)
    predictor.delete_endpoint()


def test_deploy_rejects_something_that_is_not_a_model(session, tmp_path):
    with pytest.raises(ValueError, match="config.json|Cannot find"):
        deploy(tmp_path, role=ROLE, boto_session=session, poll=0.01)


def write_inputs(session, rng, lengths=(3, 5, 1)):
    """fg-style CSV files (one series per line) under s3://data/in/, one per length."""
    s3 = session.client("s3")
    s3.create_bucket(Bucket="data")
    files = {}
    for i, n in enumerate(lengths):
        rows = [rng.normal(size=int(rng.integers(6, 20))).round(4) for _ in range(n)]
        body = "".join(",".join(str(v) for v in row) + "\n" for row in rows)
        key = f"in/{'sub/' if i == 2 else ''}part-{i}.csv"
        s3.put_object(Bucket="data", Key=key, Body=body.encode())
        files[key[len("in/"):]] = rows
    return files


def as_array(rows):
    X = np.full((len(rows), 1, max(map(len, rows))), np.nan, dtype=np.float32)
    for i, r in enumerate(rows):
        X[i, 0, : len(r)] = r
    return X


def test_batch_predict_several_files(session, model_dir, local_model, rng):
    files = write_inputs(session, rng)
    model_uri = upload_model(session, model_dir)
    # role and session come from the job handle
    result = batch_predict(JobHandle(model_uri, session), "s3://data/in/", "s3://data/out/",
                           job_name="bt-1", poll=0.01)
    desc = session.client("sagemaker").describe_transform_job(TransformJobName="bt-1")
    model = session.client("sagemaker").describe_model(ModelName=desc["ModelName"])
    assert model["ExecutionRoleArn"] == ROLE
    assert desc["TransformJobStatus"] == "Completed"
    assert desc["TransformInput"]["SplitType"] == "Line"
    assert desc["TransformInput"]["ContentType"] == "text/csv"
    assert desc["TransformOutput"]["AssembleWith"] == "Line"
    outputs = result.outputs()
    assert sorted(outputs) == ["part-0.csv.out", "part-1.csv.out", "sub/part-2.csv.out"]
    df = result.predictions()
    for name, rows in files.items():
        lines = outputs[name + ".out"].decode().splitlines()
        assert len(lines) == len(rows)  # one output line per input line
        ref = local_model.assign(as_array(rows))
        assert [float(line.split(",")[0]) for line in lines] == \
            ref.closest_cluster.astype(float).tolist()
        part = df[df["file"] == name]
        np.testing.assert_allclose(np.stack(part["embedding"]), ref.embedding, rtol=1e-5,
                                   atol=1e-6)


def test_a_large_local_file_is_split_into_parts_spread_over_the_instances(
        session, aws, model_dir, local_model, tmp_path):
    from tsc_toolkit.io.datasets import make_series
    from tsc_toolkit.sagemaker.staging import upload_series

    X, _ = make_series(23, length=24, missing_rate=0.1, short_fraction=0.3, random_state=5)
    np.save(tmp_path / "big.npy", X)
    session.client("s3").create_bucket(Bucket="data")
    uris = upload_series(tmp_path / "big.npy", "s3://data/big/", parts=5, chunk_size=4,
                         boto_session=session)
    assert [u.rsplit("/", 1)[1] for u in uris] == [f"part-0000{i}.csv" for i in range(5)]
    result = batch_predict(JobHandle(upload_model(session, model_dir), session),
                           "s3://data/big/", "s3://data/big-out/", instance_count=2,
                           max_payload=1, job_name="bt-spread", poll=0.01)
    spread = aws.local_serving.transform_jobs["bt-spread"].instances
    assert sorted(spread) == ["algo-1", "algo-2"] and all(spread.values())
    assert sorted(k for keys in spread.values() for k in keys) == sorted(
        u.split("/", 3)[3] for u in uris)  # each file on exactly one instance
    outputs = result.outputs()
    lines = [line for name in sorted(outputs) for line in outputs[name].decode().splitlines()]
    assert [float(line.split(",")[0]) for line in lines] == \
        local_model.predict(X).astype(float).tolist()


def test_batch_predict_warns_when_instances_outnumber_files_and_checks_payload(
        session, model_dir, rng):
    write_inputs(session, rng, lengths=(2,))
    handle = JobHandle(upload_model(session, model_dir), session)
    with pytest.raises(ValueError, match="1 to 100"):
        batch_predict(handle, "s3://data/in/", "s3://data/out/", max_payload=500)
    with pytest.warns(UserWarning, match="1 object.*3 instances"):
        batch_predict(handle, "s3://data/in/", "s3://data/out/", instance_count=3, poll=0.01)


def test_batch_predict_jsonlines_with_an_existing_model_name(session, model_dir, rng):
    files = write_inputs(session, rng, lengths=(4,))
    result = batch_predict(JobHandle(upload_model(session, model_dir)), "s3://data/in/",
                           "s3://data/out-a/", role=ROLE, boto_session=session, poll=0.01)
    model_name = session.client("sagemaker").describe_transform_job(
        TransformJobName=result.job_name)["ModelName"]
    again = batch_predict(model_name, "s3://data/in/", "s3://data/out-b/",
                          accept="application/jsonlines", boto_session=session, poll=0.01)
    df = again.predictions()
    assert len(df) == len(files["part-0.csv"])
    assert {"label", "distance", "embedding"} <= set(df.columns)


def test_transform_job_fails_on_a_bad_file_and_says_which(session, model_dir, rng):
    write_inputs(session, rng, lengths=(2,))
    session.client("s3").put_object(Bucket="data", Key="in/bad.csv", Body=b"1,2,x\n")
    with pytest.raises(JobFailedError, match="bad.csv"):
        batch_predict(JobHandle(upload_model(session, model_dir)), "s3://data/in/",
                      "s3://data/out/", role=ROLE, boto_session=session, poll=0.01)
    keys = [o["Key"] for o in session.client("s3").list_objects_v2(
        Bucket="data", Prefix="out/").get("Contents", [])]
    assert keys == ["out/part-0.csv.out"]  # the good file still has its output


def test_invoking_a_missing_endpoint_is_a_validation_error(session):
    from botocore.exceptions import ClientError

    runtime = session.client("sagemaker-runtime")
    with pytest.raises(ClientError, match="not found"):
        runtime.invoke_endpoint(EndpointName="nope", Body=b"1,2", ContentType="text/csv")


def test_sdk_v3_endpoint_and_transformer_use_the_same_models(aws, session, model_dir,
                                                             local_model, rng):
    """What deploy()/create_model() create works with SDK v3's own resources too."""
    from sagemaker.core.resources import Endpoint
    from sagemaker.core.transformer import Transformer as SDKTransformer

    predictor = deploy(model_dir, role=ROLE, endpoint_name="v3-ep", boto_session=session,
                       poll=0.01)
    endpoint = Endpoint.get(endpoint_name="v3-ep", session=session)
    answer = endpoint.invoke(body="1,2,3,4\n0.5,,0.2\n", content_type="text/csv",
                             accept="text/csv")
    lines = answer.body.read().decode().splitlines()
    X = as_array([[1, 2, 3, 4], [0.5, np.nan, 0.2]])
    assert [float(line.split(",")[0]) for line in lines] == \
        local_model.predict(X).astype(float).tolist()
    predictor.delete_endpoint(delete_model=False)

    files = write_inputs(session, rng, lengths=(2, 3))
    sess = aws.sagemaker_session
    transformer = SDKTransformer(model_name="v3-ep", instance_count=1,
                                 instance_type="ml.m5.large", output_path="s3://data/v3-out",
                                 accept="application/jsonlines", assemble_with="Line",
                                 sagemaker_session=sess)
    transformer.transform("s3://data/in/", content_type="text/csv", split_type="Line",
                          wait=True, logs=False)
    s3 = session.client("s3")
    for name, rows in files.items():
        body = s3.get_object(Bucket="data", Key=f"v3-out/{name}.out")["Body"].read()
        assert len(body.decode().splitlines()) == len(rows)


def test_training_job_handle_to_endpoint_and_batch_transform(aws, session, rng):
    """The notebook path: a CNN-KMeans training job (run by the local runner), then deploy()
    and batch_predict() on its handle; answers match the job's own model."""
    from tsc_toolkit.io.datasets import make_series
    from tsc_toolkit.sagemaker import fit

    X, _ = make_series(20, n_clusters=2, length=24, random_state=0)
    job = fit(X, hyperparameters={"clusters": 2, "blocks": 1, "filters": 4, "reduced-size": 4,
                                  "output-size": 4, "epochs": 1, "random-state": 0,
                                  "device": "cpu"},
              instance_type="ml.m5.xlarge", processes_per_host=1, role=aws.role,
              session=aws, wait=True)
    assert job.status == "Completed"
    model = job.model(device="cpu")
    Xq = series(rng, 4)
    predictor = deploy(job, poll=0.01)
    df = predictor.predict(Xq)
    assert df["label"].tolist() == model.predict(Xq).tolist()
    predictor.delete_endpoint()

    files = write_inputs(session, rng, lengths=(2, 3))
    result = batch_predict(job, "s3://data/in/", "s3://data/out/", poll=0.01)
    preds = result.predictions()
    for name, rows in files.items():
        part = preds[preds["file"] == name]
        assert part["label"].tolist() == model.predict(as_array(rows)).tolist()
