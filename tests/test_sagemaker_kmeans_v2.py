"""SDK v2's KMeans code runs unchanged on tsc_toolkit.sagemaker, offline against moto's server.

The cases follow what SDK v2's own unit and integration tests for KMeans check (hyperparameter
mapping and validation, fit on a record set, KMeansModel(...).deploy(...).predict(...),
delete_model, fit(wait=False) then attach), with the jobs run by the local emulation instead
of mocks: every call below goes over HTTP to moto on 127.0.0.1.
"""

from __future__ import annotations

import json
from datetime import timedelta

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError

from tsc_toolkit.sagemaker import KMeans, KMeansModel, KMeansPredictor, RecordSet

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
INSTANCE_TYPE = "ml.c4.xlarge"
REQUIRED = {"role": ROLE, "instance_count": 1, "instance_type": INSTANCE_TYPE, "k": 2}
CENTERS = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 10.0, 10.0]], dtype=np.float32)


def blobs(n_per=20, seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([c + rng.normal(0, 0.3, size=(n_per, 3))
                           for c in CENTERS]).astype(np.float32)


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from tsc_toolkit.sagemaker import offline_aws

    with offline_aws(run_jobs="sync", workdir=tmp_path_factory.mktemp("v2-jobs")) as aws:
        yield aws


@pytest.fixture
def sagemaker_session(aws):
    return aws.sagemaker_session


def kmeans(sagemaker_session, **kwargs):
    params = dict(REQUIRED, sagemaker_session=sagemaker_session, poll=0.01)
    params.update(kwargs)
    return KMeans(**params)


# ---------------------------------------------------------------- construction

def test_init_required_positional_and_named(sagemaker_session):
    est = KMeans(ROLE, 1, INSTANCE_TYPE, 2, sagemaker_session=sagemaker_session)
    assert (est.role, est.instance_count, est.instance_type, est.k) == (ROLE, 1, INSTANCE_TYPE, 2)
    est = KMeans(sagemaker_session=sagemaker_session, **REQUIRED)
    assert (est.role, est.instance_count, est.instance_type, est.k) == (ROLE, 1, INSTANCE_TYPE, 2)


def test_all_hyperparameters_map_to_the_containers_names(sagemaker_session):
    est = kmeans(sagemaker_session, init_method="random", max_iterations=3, tol=0.5,
                 num_trials=5, local_init_method="kmeans++", half_life_time_size=0, epochs=10,
                 center_factor=2, eval_metrics=["msd", "ssd"])
    assert est.hyperparameters() == {
        "k": "2", "init_method": "random", "local_lloyd_max_iter": "3",
        "local_lloyd_tol": "0.5", "local_lloyd_num_trials": "5",
        "local_lloyd_init_method": "kmeans++", "half_life_time_size": "0", "epochs": "10",
        "extra_center_factor": "2", "eval_metrics": '["msd", "ssd"]', "force_dense": "True"}


def test_image_is_the_regions_builtin_kmeans():
    session = boto3.Session(region_name="us-west-2", aws_access_key_id="x",
                            aws_secret_access_key="x")
    est = KMeans(boto_session=session, **REQUIRED)
    assert est.training_image_uri() == "174872318107.dkr.ecr.us-west-2.amazonaws.com/kmeans:1"
    model = KMeansModel("s3://bucket/model.tar.gz", ROLE, boto_session=session)
    assert model.image_uri == est.training_image_uri() and model.name is None


@pytest.mark.parametrize("name, value, error", [
    ("k", "string", ValueError), ("k", 0, ValueError), ("k", 1, ValueError),
    ("eval_metrics", 0, TypeError),
    ("init_method", 0, ValueError), ("max_iterations", "string", ValueError),
    ("tol", "string", ValueError), ("num_trials", "string", ValueError),
    ("local_init_method", 0, ValueError), ("half_life_time_size", "string", ValueError),
    ("epochs", "string", ValueError), ("center_factor", "string", ValueError),
    ("init_method", "string", ValueError), ("max_iterations", 0, ValueError),
    ("tol", -0.1, ValueError), ("tol", 1.1, ValueError), ("num_trials", 0, ValueError),
    ("local_init_method", "string", ValueError), ("half_life_time_size", -1, ValueError),
    ("epochs", 0, ValueError), ("center_factor", 0, ValueError),
])
def test_hyperparameters_are_checked_as_v2_checks_them(sagemaker_session, name, value, error):
    with pytest.raises(error, match=name):
        kmeans(sagemaker_session, **{name: value})
    est = kmeans(sagemaker_session)
    with pytest.raises(error, match=name):  # assigning later is checked the same
        setattr(est, name, value)


def test_attributes_assigned_after_construction_reach_the_hyperparameters(sagemaker_session):
    est = kmeans(sagemaker_session, k=10)
    est.init_method = "random"
    est.max_iterations = 1
    est.tol = 1
    est.num_trials = 1
    est.local_init_method = "kmeans++"
    est.half_life_time_size = 1
    est.epochs = 1
    est.center_factor = 1
    est.eval_metrics = ["ssd", "msd"]
    assert est.hyperparameters() == {
        "init_method": est.init_method, "local_lloyd_max_iter": str(est.max_iterations),
        "local_lloyd_tol": str(est.tol), "local_lloyd_num_trials": str(est.num_trials),
        "local_lloyd_init_method": est.local_init_method,
        "half_life_time_size": str(est.half_life_time_size), "epochs": str(est.epochs),
        "extra_center_factor": str(est.center_factor), "k": str(est.k),
        "eval_metrics": json.dumps(est.eval_metrics), "force_dense": "True"}
    assert est.tol == 1.0 and est.hyperparameters()["local_lloyd_tol"] == "1.0"
    est.epochs = None  # None means "not sent"
    assert "epochs" not in est.hyperparameters()


def test_mini_batch_size_defaults_to_5000_and_refuses_zero_or_a_string(sagemaker_session):
    est = kmeans(sagemaker_session)
    records = RecordSet("s3://bucket/prefix", num_records=1, feature_dim=10, channel="train")
    est._prepare_for_training(records)
    assert est.mini_batch_size == 5000 and est.feature_dim == 10
    with pytest.raises((TypeError, ValueError)):
        est._prepare_for_training(records, "some")
    with pytest.raises(ValueError):
        est._prepare_for_training(records, 0)
    with pytest.raises(ValueError, match="train channel"):
        est._prepare_for_training([RecordSet("s3://b/p", 1, 10, channel="test")])


# ------------------------------------------------------------- jobs and endpoints

def test_fit_then_kmeans_model_deploy_predict_and_delete_model(aws, sagemaker_session):
    """v2's integration test: hyperparameters set as attributes, fit on a record set, then a
    KMeansModel built from model_data alone (no image) is deployed and answers records."""
    est = kmeans(sagemaker_session, k=3)
    est.init_method = "random"
    est.epochs = 1
    est.eval_metrics = ["ssd", "msd"]
    X = blobs()
    est.fit(est.record_set(X[:60]), job_name="v2-kmeans", logs=False)
    job = est.latest_training_job
    assert job.name == str(job) == "v2-kmeans"
    assert job.describe()["TrainingJobStatus"] == "Completed"
    assert job.wait(logs=False)["TrainingJobStatus"] == "Completed"
    sent = aws.created_jobs["v2-kmeans"]["HyperParameters"]
    assert sent == dict(est.hyperparameters(), feature_dim="3", mini_batch_size="5000")

    model = KMeansModel(est.model_data, role=ROLE, sagemaker_session=sagemaker_session)
    assert model.name is None
    predictor = model.deploy(1, INSTANCE_TYPE, endpoint_name="v2-kmeans")
    assert isinstance(predictor, KMeansPredictor) and model.name
    sm = aws.boto_session.client("sagemaker")
    assert sm.describe_model(ModelName=model.name)["PrimaryContainer"]["Image"] == \
        "382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1"
    result = predictor.predict(X[:10])
    assert len(result) == 10
    for record in result:
        assert record.label["closest_cluster"] is not None
        assert record.label["distance_to_cluster"] is not None
    clusters = [r.label["closest_cluster"].float32_tensor.values[0] for r in result]
    assert len(set(clusters)) == 1  # the first ten rows are one blob

    predictor.delete_model()
    with pytest.raises(ClientError, match="Could not find model"):
        sm.describe_model(ModelName=model.name)
    predictor.delete_endpoint()


def test_fit_without_wait_then_attach_and_deploy(aws, sagemaker_session):
    est = kmeans(sagemaker_session, k=3, epochs=1)
    est.fit(est.record_set(blobs()), wait=False, job_name="v2-async", logs=False)
    again = KMeans.attach(training_job_name="v2-async", sagemaker_session=sagemaker_session,
                          poll=0.01)
    assert again.latest_training_job.name == "v2-async"
    assert again.hyperparameters() == dict(est.hyperparameters())
    again.latest_training_job.wait(logs=False)
    model = KMeansModel(again.model_data, role=ROLE, sagemaker_session=sagemaker_session)
    predictor = model.deploy(1, INSTANCE_TYPE, endpoint_name="v2-async")
    assert len(predictor.predict(blobs()[:10])) == 10
    predictor.delete_endpoint()


def test_fit_ndarray_and_the_estimators_endpoint(aws, sagemaker_session):
    est = kmeans(sagemaker_session, k=3, epochs=1)
    with pytest.raises(ValueError, match="endpoint"):
        est.delete_endpoint()
    est.fit_ndarray(blobs(), mini_batch_size=30, job_name="v2-ndarray", logs=False)
    assert aws.created_jobs["v2-ndarray"]["HyperParameters"]["mini_batch_size"] == "30"
    predictor = est.deploy(1, INSTANCE_TYPE, endpoint_name="v2-ndarray-ep")
    assert len(predictor.predict(CENTERS)) == 3
    est.delete_endpoint()
    sm = aws.boto_session.client("sagemaker")
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName="v2-ndarray-ep")
    with pytest.raises(ValueError, match="endpoint"):
        est.delete_endpoint()


def test_custom_serializer_and_deserializer_are_kept_and_used(aws, sagemaker_session):
    from sagemaker.core.deserializers import JSONDeserializer
    from sagemaker.core.serializers import CSVSerializer

    est = kmeans(sagemaker_session, k=3, epochs=1)
    est.fit_ndarray(blobs(), job_name="v2-serializers", logs=False)
    serializer, deserializer = CSVSerializer(), JSONDeserializer()
    predictor = est.create_model().deploy(1, INSTANCE_TYPE, serializer=serializer,
                                          deserializer=deserializer,
                                          endpoint_name="v2-serializers")
    assert predictor.serializer is serializer and predictor.deserializer is deserializer
    answer = predictor.predict(CENTERS)  # CSV out, JSON back, as the objects say
    assert [set(p) for p in answer["predictions"]] == [
        {"closest_cluster", "distance_to_cluster"}] * 3
    assert len({p["closest_cluster"] for p in answer["predictions"]}) == 3
    predictor.delete_endpoint()


def test_training_job_analytics_dataframe(aws, sagemaker_session):
    est = kmeans(sagemaker_session, k=3, epochs=1)
    est.fit_ndarray(blobs(), job_name="v2-analytics", logs=False)
    final = {m["MetricName"]: m["Value"]
             for m in est.latest_training_job.describe()["FinalMetricDataList"]}
    frame = est.training_job_analytics.dataframe()
    assert list(frame.columns) == ["timestamp", "metric_name", "value"]
    assert frame.to_dict("records") == [{"timestamp": 0.0, "metric_name": "train:msd",
                                         "value": final["train:msd"]}]

    # where CloudWatch has the points (as on AWS), they are what the frame shows
    start = est.latest_training_job.describe()["TrainingStartTime"]
    aws.boto_session.client("cloudwatch").put_metric_data(
        Namespace="/aws/sagemaker/TrainingJobs", MetricData=[
            {"MetricName": "train:msd", "Value": v, "Timestamp": start + timedelta(seconds=s),
             "Dimensions": [{"Name": "TrainingJobName", "Value": "v2-analytics"}]}
            for s, v in ((1, 4.0), (61, 2.0))])
    frame = est.training_job_analytics.dataframe()
    assert frame["metric_name"].tolist() == ["train:msd", "train:msd"]
    assert frame["value"].tolist() == [4.0, 2.0]
    assert frame["timestamp"].tolist()[0] == 0.0 and frame["timestamp"].tolist()[1] > 0
    with pytest.raises(ValueError, match="No training job"):
        _ = kmeans(sagemaker_session).training_job_analytics
