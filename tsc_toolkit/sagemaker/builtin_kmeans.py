"""SDK v2's built-in K-Means estimator API (``sagemaker.KMeans``), rebuilt on boto3 for SDK v3.

SDK v3 removed ``sagemaker.KMeans``, ``RecordSet`` and ``KMeansPredictor`` and stubbed out the
recordIO-protobuf writer. This module brings the same workflow back::

    from tsc_toolkit.sagemaker import KMeans
    kmeans = KMeans(role=role, instance_count=2, instance_type="ml.c5.xlarge", k=10)
    records = kmeans.record_set(embeddings.astype("float32"))    # recordIO shards + manifest
    kmeans.fit(records, mini_batch_size=5000)                    # built-in "kmeans" image
    predictor = kmeans.deploy(1, "ml.m5.large")
    result = predictor.predict(embeddings[:10])
    [r.label["closest_cluster"].float32_tensor.values[0] for r in result]
    predictor.delete_endpoint()

``predict`` returns :class:`~tsc_toolkit.sagemaker.shared.recordio.Record` objects, as v2 did: read
``record.label["closest_cluster"].float32_tensor.values[0]`` and
``record.label["distance_to_cluster"].float32_tensor.values[0]`` (the cluster index is a
float, as the container sends it). Jobs are created with boto3 (``CreateTrainingJob`` etc.);
the image comes from SDK v3's ``image_uris.retrieve("kmeans", region)``.

A typical use: cluster millions of embeddings (``CNNKMeans.transform``) on several
instances after a CNN-KMeans encoder job.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .deploy import (
    JobFailedError,
    Transformer,
    _boto_session,
    _create_endpoint,
    _execution_role,
    _region,
    default_bucket,
    image_uri,
    name_from_base,
    wait_for,
)
from .shared.aws import split_s3_uri
from .shared.recordio import CONTENT_TYPE as RECORDIO
from .shared.recordio import Record, Tensor, Value, numpy_to_record_bytes, read_records
from .training_job import SageMakerJob

__all__ = ["KMeans", "KMeansModel", "KMeansPredictor", "RecordSet", "RecordSerializer",
           "RecordDeserializer", "TrainingJob", "TrainingJobAnalytics", "JobFailedError",
           "DEFAULT_MINI_BATCH_SIZE"]

#: ``mini_batch_size`` when ``fit`` is given none (SDK v2's default for K-Means).
DEFAULT_MINI_BATCH_SIZE = 5000

_VALID_METRICS = ("msd", "ssd")
_EXTRA_KWARGS = ("data_location", "output_path", "base_job_name", "sagemaker_session",
                 "boto_session", "volume_size", "max_run", "tags", "input_mode",
                 "output_kms_key", "default_bucket", "image_uri", "poll", "environment",
                 "use_spot_instances", "max_wait", "checkpoint_s3_uri")
# The model arguments of SDK v2's Model that mean something for a built-in K-Means model.
_MODEL_KWARGS = ("name", "env", "vpc_config", "enable_network_isolation", "image_uri", "image",
                 "boto_session", "poll")


class _Hyperparameter:
    """One hyperparameter of the built-in algorithm, checked whenever it is assigned.

    As in SDK v2, the value is first converted with ``convert`` (so ``k="string"`` raises
    ValueError and ``eval_metrics=0`` TypeError, from ``int`` and ``list``), then checked;
    ``None`` means "not sent" (the container's default). The value lives in the owner's
    ``_hyperparameters`` under the container's name, which :meth:`KMeans.hyperparameters`
    sends.
    """

    def __init__(self, name: str, convert, check=None, rule: str = ""):
        self.name = name
        self.convert = convert
        self.check = check
        self.rule = rule
        self.attr = name

    def __set_name__(self, owner, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__.get("_hyperparameters", {}).get(self.name)

    def __set__(self, obj, value) -> None:
        if value is not None:
            try:
                value = self.convert(value)
            except (TypeError, ValueError) as err:
                raise type(err)(f"Invalid hyperparameter {self.attr}={value!r}: expecting "
                                f"{self.rule}.") from None
            if self.check is not None and not self.check(value):
                raise ValueError(f"Invalid hyperparameter {self.attr}={value!r}: expecting "
                                 f"{self.rule}.")
        obj.__dict__.setdefault("_hyperparameters", {})[self.name] = value


def _at_least(minimum):
    return lambda v: v >= minimum


def _one_of(*options):
    return lambda v: v in options


def _serialize(value) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


@dataclass
class RecordSet:
    """Training data on S3 for a built-in algorithm (SDK v2's ``RecordSet``)."""

    s3_data: str
    num_records: int
    feature_dim: int
    s3_data_type: str = "ManifestFile"
    channel: str = "train"

    def data_channel(self) -> dict:
        """The ``InputDataConfig`` entry of this record set (sharded by S3 key)."""
        return {"ChannelName": self.channel,
                "DataSource": {"S3DataSource": {"S3DataType": self.s3_data_type,
                                                "S3Uri": self.s3_data,
                                                "S3DataDistributionType": "ShardedByS3Key"}}}

    def records_s3_input(self) -> dict:
        """Same as :meth:`data_channel` (v2's name)."""
        return self.data_channel()


class KMeans:
    """SageMaker's built-in K-Means algorithm, with SDK v2's ``sagemaker.KMeans`` interface.

    Parameters
    ----------
    role : str
        IAM role ARN for the jobs and endpoints.
    instance_count, instance_type : int, str
        Training instances (the data is sharded across them).
    k : int
        Number of clusters (> 1).
    init_method, max_iterations, tol, num_trials, local_init_method, half_life_time_size,
    epochs, center_factor, eval_metrics
        The built-in algorithm's hyperparameters (``None`` leaves the container's default).
        They are checked as SDK v2 checks them, also when assigned later
        (``kmeans.epochs = 1``): converted to their type first (``int``, ``float``, ``str``,
        ``list``; a failed conversion raises ValueError or TypeError), then their range
        (``tol`` in [0, 1]; ``max_iterations``, ``num_trials``, ``epochs``,
        ``center_factor`` >= 1; ``half_life_time_size`` >= 0; ``init_method`` and
        ``local_init_method`` in {"random", "kmeans++"}; ``eval_metrics`` of "msd" and
        "ssd"), raising ValueError.
    **kwargs
        ``data_location`` (``s3://`` prefix for :meth:`record_set`), ``output_path``,
        ``base_job_name``, ``boto_session`` or ``sagemaker_session``, ``default_bucket``,
        ``volume_size``, ``max_run``, ``tags``, ``input_mode``, ``output_kms_key``,
        ``image_uri``, ``poll`` (seconds between status checks); ``train_instance_count`` and
        ``train_instance_type`` are deprecated aliases of ``instance_count`` and
        ``instance_type``.

    Attributes
    ----------
    latest_training_job : TrainingJob or None
        The job of the last :meth:`fit` (or :meth:`attach`): ``.name``, ``.describe()``,
        ``.wait()``; ``str()`` gives the name.
    """

    repo_name = "kmeans"
    repo_version = "1"

    k = _Hyperparameter("k", int, lambda v: v > 1, "an integer greater than 1")
    init_method = _Hyperparameter("init_method", str, _one_of("random", "kmeans++"),
                                  "'random' or 'kmeans++'")
    max_iterations = _Hyperparameter("local_lloyd_max_iter", int, _at_least(1),
                                     "an integer >= 1")
    tol = _Hyperparameter("local_lloyd_tol", float, lambda v: 0 <= v <= 1,
                          "a number in [0, 1]")
    num_trials = _Hyperparameter("local_lloyd_num_trials", int, _at_least(1),
                                 "an integer >= 1")
    local_init_method = _Hyperparameter("local_lloyd_init_method", str,
                                        _one_of("random", "kmeans++"), "'random' or 'kmeans++'")
    half_life_time_size = _Hyperparameter("half_life_time_size", int, _at_least(0),
                                          "an integer >= 0")
    epochs = _Hyperparameter("epochs", int, _at_least(1), "an integer >= 1")
    center_factor = _Hyperparameter("extra_center_factor", int, _at_least(1),
                                    "an integer >= 1")
    eval_metrics = _Hyperparameter("eval_metrics", list,
                                   lambda v: all(m in _VALID_METRICS for m in v),
                                   "a list of 'msd' and/or 'ssd'")
    feature_dim = _Hyperparameter("feature_dim", int, _at_least(1), "an integer >= 1")
    mini_batch_size = _Hyperparameter("mini_batch_size", int, _at_least(1), "an integer >= 1")

    def __init__(self, role: str | None = None, instance_count: int | None = None,
                 instance_type: str | None = None, k: int | None = None,
                 init_method: str | None = None, max_iterations: int | None = None,
                 tol: float | None = None, num_trials: int | None = None,
                 local_init_method: str | None = None, half_life_time_size: int | None = None,
                 epochs: int | None = None, center_factor: int | None = None,
                 eval_metrics: list[str] | None = None, **kwargs):
        for old, new in (("train_instance_count", "instance_count"),
                         ("train_instance_type", "instance_type")):
            if old in kwargs:
                warnings.warn(f"{old} is deprecated; use {new}.", DeprecationWarning,
                              stacklevel=2)
                value = kwargs.pop(old)
                if new == "instance_count":
                    instance_count = instance_count if instance_count is not None else value
                else:
                    instance_type = instance_type if instance_type is not None else value
        unknown = sorted(set(kwargs) - set(_EXTRA_KWARGS))
        if unknown:
            raise TypeError(f"KMeans() got unexpected keyword argument(s) {unknown}.")
        if instance_count is None or instance_type is None:
            raise ValueError("KMeans needs instance_count and instance_type.")
        self._hyperparameters: dict[str, Any] = {}
        self.k = k
        self.init_method = init_method
        self.max_iterations = max_iterations
        self.tol = tol
        self.num_trials = num_trials
        self.local_init_method = local_init_method
        self.half_life_time_size = half_life_time_size
        self.epochs = epochs
        self.center_factor = center_factor
        self.eval_metrics = eval_metrics
        self.role = role
        self.instance_count = int(instance_count)
        self.instance_type = instance_type
        self.sagemaker_session = kwargs.get("sagemaker_session")
        self.boto_session = _boto_session(kwargs.get("boto_session"), self.sagemaker_session)
        self._bucket = kwargs.get("default_bucket")
        self.data_location = kwargs.get("data_location")
        self.output_path = kwargs.get("output_path")
        self.base_job_name = kwargs.get("base_job_name")
        self.volume_size = int(kwargs.get("volume_size", 30))
        self.max_run = int(kwargs.get("max_run", 24 * 60 * 60))
        self.tags = kwargs.get("tags")
        self.input_mode = kwargs.get("input_mode", "File")
        self.output_kms_key = kwargs.get("output_kms_key")
        self.environment = kwargs.get("environment")
        self.poll = float(kwargs.get("poll", 10.0))
        self._image_uri = kwargs.get("image_uri")
        self.latest_training_job: TrainingJob | None = None
        self._models: dict[str, KMeansModel] = {}
        self._endpoint: KMeansPredictor | None = None

    # ------------------------------------------------------------------- helpers

    @property
    def region(self) -> str:
        return _region(self.boto_session)

    def default_bucket(self) -> str:
        if self._bucket is None:
            self._bucket = default_bucket(self.boto_session)
        return self._bucket

    def training_image_uri(self) -> str:
        """The built-in ``kmeans`` image of the session's region."""
        if self._image_uri is None:
            self._image_uri = image_uri(self.repo_name, self.region)
        return self._image_uri

    def hyperparameters(self) -> dict[str, str]:
        """The hyperparameters sent to the container, as strings (v2's exact keys)."""
        hps = {"force_dense": "True"}  # the algorithm reads Record data only with it
        hps.update({name: _serialize(value) for name, value in self._hyperparameters.items()
                    if value is not None})
        return hps

    # --------------------------------------------------------------------- data

    def record_set(self, train: np.ndarray, labels: np.ndarray | None = None,
                   channel: str = "train", encrypt: bool = False) -> RecordSet:
        """Upload ``train`` (n, feature_dim) as recordIO-protobuf shards and a manifest.

        One ``matrix_<i>.pbr`` shard per training instance goes under
        ``<data_location>/KMeans-<timestamp>/`` (``data_location`` defaults to
        ``s3://<default bucket>/sagemaker-record-sets/``), with a ``.amazon.manifest`` listing
        them. Rows are written as float32, as the built-in algorithm reads them.
        """
        train = np.asarray(train)
        if train.ndim != 2:
            raise ValueError(f"train must be a 2-D array (n_records, feature_dim); got shape "
                             f"{train.shape}.")
        train = train.astype(np.float32, copy=False)
        if not np.isfinite(train).all():
            raise ValueError("train holds NaN or infinite values.")
        n_shards = self.instance_count
        if len(train) < n_shards:
            raise ValueError(f"{len(train)} records cannot be split into {n_shards} shards "
                             "(one per training instance).")
        location = self.data_location or f"s3://{self.default_bucket()}/sagemaker-record-sets/"
        bucket, prefix = split_s3_uri(location)
        prefix = (prefix.rstrip("/") + "/" if prefix else "") + \
            f"{type(self).__name__}-{_timestamp()}/"
        s3 = self.boto_session.client("s3")
        extra = {"ServerSideEncryption": "AES256"} if encrypt else {}
        size = len(train) // n_shards
        names = []
        width = len(str(n_shards))
        for i in range(n_shards):
            stop = (i + 1) * size if i < n_shards - 1 else len(train)
            shard_labels = None if labels is None else np.asarray(labels)[i * size:stop]
            name = f"matrix_{str(i).zfill(width)}.pbr"
            s3.put_object(Bucket=bucket, Key=prefix + name,
                          Body=numpy_to_record_bytes(train[i * size:stop], shard_labels),
                          **extra)
            names.append(name)
        manifest = json.dumps([{"prefix": f"s3://{bucket}/{prefix}"}, *names])
        s3.put_object(Bucket=bucket, Key=prefix + ".amazon.manifest",
                      Body=manifest.encode("utf-8"), **extra)
        return RecordSet(f"s3://{bucket}/{prefix}.amazon.manifest", num_records=len(train),
                         feature_dim=train.shape[1], channel=channel)

    # ------------------------------------------------------------------ training

    def _prepare_for_training(self, records: RecordSet | list[RecordSet],
                              mini_batch_size: int | None = None) -> None:
        """Set ``feature_dim`` from the train channel and ``mini_batch_size`` (default 5000)."""
        record_list = records if isinstance(records, list) else [records]
        train = next((r for r in record_list if r.channel == "train"), None)
        if train is None:
            raise ValueError("Must provide train channel.")
        self.feature_dim = train.feature_dim
        if mini_batch_size is None:
            mini_batch_size = DEFAULT_MINI_BATCH_SIZE
        if isinstance(mini_batch_size, str):  # int("50") would pass; v2 code never sends one
            raise TypeError(f"mini_batch_size must be an integer, not {mini_batch_size!r}.")
        self.mini_batch_size = mini_batch_size

    def fit(self, records: RecordSet | list[RecordSet], mini_batch_size: int | None = None,
            wait: bool = True, logs: bool = True, job_name: str | None = None) -> None:
        """Start a training job of the built-in image on ``records`` (a RecordSet or a list
        with a ``train`` channel and optionally a ``test`` channel).

        ``mini_batch_size`` defaults to 5000 (the built-in algorithm caps it at the records
        per instance). The job is :attr:`latest_training_job`.
        """
        self._prepare_for_training(records, mini_batch_size)
        record_list = records if isinstance(records, list) else [records]
        role = _execution_role(self.role)
        name = job_name or name_from_base(self.base_job_name or "kmeans")
        output = self.output_path or f"s3://{self.default_bucket()}/"
        channels = [r.data_channel() for r in record_list]
        output_config: dict[str, Any] = {"S3OutputPath": output}
        if self.output_kms_key:
            output_config["KmsKeyId"] = self.output_kms_key
        kwargs: dict[str, Any] = {}
        if self.tags:
            kwargs["Tags"] = self.tags
        if self.environment:
            kwargs["Environment"] = dict(self.environment)
        self.boto_session.client("sagemaker").create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": self.training_image_uri(),
                                    "TrainingInputMode": self.input_mode},
            RoleArn=role, InputDataConfig=channels, OutputDataConfig=output_config,
            ResourceConfig={"InstanceCount": self.instance_count,
                            "InstanceType": self.instance_type,
                            "VolumeSizeInGB": self.volume_size},
            StoppingCondition={"MaxRuntimeInSeconds": self.max_run},
            HyperParameters=self.hyperparameters(), **kwargs)
        self.latest_training_job = TrainingJob(name, self.boto_session, poll=self.poll)
        if logs:
            print(f"Training job {name} started ({self.instance_count} x "
                  f"{self.instance_type}).", file=sys.stderr, flush=True)
        if wait:
            self.latest_training_job.wait(logs=logs)

    def fit_ndarray(self, train: np.ndarray, labels: np.ndarray | None = None,
                    mini_batch_size: int | None = None, wait: bool = True, logs: bool = True,
                    job_name: str | None = None) -> None:
        """:meth:`record_set` then :meth:`fit`: train on a 2-D array in one call."""
        self.fit(self.record_set(train, labels), mini_batch_size=mini_batch_size, wait=wait,
                 logs=logs, job_name=job_name)

    def _job(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValueError("No training job yet: call fit() or KMeans.attach().")
        return self.latest_training_job

    def describe(self) -> dict:
        """``DescribeTrainingJob`` of the latest job."""
        return self._job().describe()

    def wait(self, logs: bool = True) -> dict:
        """Block until the latest training job ends; raise :class:`JobFailedError` on failure."""
        return self._job().wait(logs=logs)

    @property
    def model_data(self) -> str:
        """S3 URI of the latest job's ``model.tar.gz`` (holding ``model_algo-1``)."""
        return self.describe()["ModelArtifacts"]["S3ModelArtifacts"]

    @property
    def training_job_analytics(self) -> TrainingJobAnalytics:
        """The latest job's metrics: ``.dataframe()`` with timestamp, metric_name, value."""
        return TrainingJobAnalytics(self._job().name, boto_session=self.boto_session)

    @classmethod
    def attach(cls, training_job_name: str, sagemaker_session=None, boto_session=None,
               **kwargs) -> KMeans:
        """Rebuild the estimator of an earlier training job (its hyperparameters, role,
        instances and output path), ready for :meth:`deploy` or :meth:`model_data`."""
        session = _boto_session(boto_session, sagemaker_session)
        desc = session.client("sagemaker").describe_training_job(
            TrainingJobName=training_job_name)
        hps = desc.get("HyperParameters", {})
        res = desc["ResourceConfig"]
        est = cls(role=desc.get("RoleArn"), instance_count=res["InstanceCount"],
                  instance_type=res["InstanceType"], boto_session=session,
                  sagemaker_session=sagemaker_session,
                  output_path=desc.get("OutputDataConfig", {}).get("S3OutputPath"),
                  image_uri=desc["AlgorithmSpecification"].get("TrainingImage"),
                  volume_size=res.get("VolumeSizeInGB", 30), **kwargs)
        by_name = {d.name: attr for attr, d in vars(cls).items()
                   if isinstance(d, _Hyperparameter)}
        for name, raw in hps.items():
            if name in by_name:
                value = json.loads(raw.replace("'", '"')) if name == "eval_metrics" else raw
                setattr(est, by_name[name], value)
        est.latest_training_job = TrainingJob(training_job_name, session, poll=est.poll)
        return est

    # ------------------------------------------------------------------- serving

    def create_model(self, role: str | None = None, name: str | None = None) -> KMeansModel:
        """A :class:`KMeansModel` of the latest job's artifact (created on SageMaker on
        first use). The same one for every call with the same name, so :meth:`deploy` then
        :meth:`transformer` create the SageMaker model once."""
        name = name or self._job().name
        model = self._models.get(name)
        if model is None or (role is not None and role != model.role):
            model = KMeansModel(self.model_data, role or self.role,
                                image_uri=self.training_image_uri(), name=name,
                                boto_session=self.boto_session, poll=self.poll)
            self._models[name] = model
        return model

    def deploy(self, initial_instance_count: int | None = None,
               instance_type: str | None = None, serializer=None, deserializer=None,
               accelerator_type: str | None = None, endpoint_name: str | None = None,
               wait: bool = True, model_name: str | None = None, tags: list | None = None,
               **kwargs) -> KMeansPredictor:
        """Host the latest model on an endpoint; returns a :class:`KMeansPredictor`."""
        predictor = self.create_model(name=model_name).deploy(
            initial_instance_count, instance_type, serializer=serializer,
            deserializer=deserializer, accelerator_type=accelerator_type,
            endpoint_name=endpoint_name, wait=wait, tags=tags, **kwargs)
        self._endpoint = predictor
        return predictor

    def delete_endpoint(self) -> None:
        """Delete the endpoint made by :meth:`deploy` and its config.

        Raises ValueError if this estimator has deployed no endpoint (or deleted it).
        """
        if self._endpoint is None:
            raise ValueError("No endpoint to delete: this estimator has not deployed one "
                             "(call deploy() first).")
        self._endpoint.delete_endpoint()
        self._endpoint = None

    def transformer(self, instance_count: int, instance_type: str, strategy: str | None = None,
                    assemble_with: str | None = None, output_path: str | None = None,
                    accept: str | None = None, max_payload: int | None = None,
                    **kwargs) -> Transformer:
        """A batch :class:`~tsc_toolkit.sagemaker.deploy.Transformer` for the latest model."""
        return self.create_model().transformer(instance_count, instance_type, strategy=strategy,
                                               assemble_with=assemble_with,
                                               output_path=output_path, accept=accept,
                                               max_payload=max_payload, **kwargs)


class TrainingJob(SageMakerJob):
    """A built-in K-Means training job (SDK v2's ``estimator.latest_training_job``).

    ``name``, ``describe()``, ``wait(logs=True)`` as in v2, plus what
    :class:`~tsc_toolkit.sagemaker.training_job.SageMakerJob` offers (``status``,
    ``logs()``, ``stop()``...). ``str(job)`` is the job name.
    """

    def __init__(self, name: str, boto_session, poll: float = 10.0):
        super().__init__(name, boto_session)
        self.poll = poll

    def wait(self, logs: bool | str = True, *, timeout: float | None = None) -> dict:
        """Block until the job ends; return its description, raise :class:`JobFailedError`
        if it failed or was stopped. With ``logs``, print the final metrics to stderr."""
        desc = wait_for(self.describe, "TrainingJobStatus", done=("Completed",),
                        failed=("Failed", "Stopped"), poll=self.poll, timeout=timeout)
        if logs and logs != "None":
            metrics = ", ".join(f"{m['MetricName']}={m['Value']:.6g}"
                                for m in desc.get("FinalMetricDataList", []))
            print(f"Training job {self.name} completed"
                  + (f": {metrics}" if metrics else "."), file=sys.stderr, flush=True)
        return desc

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"TrainingJob({self.name!r})"


class TrainingJobAnalytics:
    """The metrics of a training job as SDK v2's ``TrainingJobAnalytics`` gives them.

    :meth:`dataframe` has one row per data point: ``timestamp`` (seconds since the metric's
    first point), ``metric_name`` and ``value``. The points come from CloudWatch
    (namespace ``/aws/sagemaker/TrainingJobs``, dimension ``TrainingJobName``, the
    ``Average`` per ``period`` seconds), as in v2; a metric that CloudWatch has no point for
    (an emulator without CloudWatch metrics) falls back to the job's final value
    (``FinalMetricDataList``), at timestamp 0.
    """

    CLOUDWATCH_NAMESPACE = "/aws/sagemaker/TrainingJobs"

    def __init__(self, training_job_name: str, metric_names: list[str] | None = None,
                 sagemaker_session=None, *, boto_session=None, period: int = 60):
        self.name = training_job_name
        self.boto_session = _boto_session(boto_session, sagemaker_session)
        self._metric_names = metric_names
        self.period = int(period)
        self._frame = None

    def __repr__(self) -> str:
        return f"<TrainingJobAnalytics for {self.name}>"

    def clear_cache(self) -> None:
        """Read the metrics again at the next :meth:`dataframe`."""
        self._frame = None

    def dataframe(self, force_refresh: bool = False):
        """A DataFrame with columns ``timestamp``, ``metric_name`` and ``value``."""
        import pandas as pd

        if self._frame is not None and not force_refresh:
            return self._frame
        desc = self.boto_session.client("sagemaker").describe_training_job(
            TrainingJobName=self.name)
        finals = {m["MetricName"]: float(m["Value"])
                  for m in desc.get("FinalMetricDataList") or []}
        names = self._metric_names or list(dict.fromkeys(
            [d["Name"] for d in (desc.get("AlgorithmSpecification") or {}).get(
                "MetricDefinitions") or []] + list(finals)))
        rows: dict[str, list] = {"timestamp": [], "metric_name": [], "value": []}
        for name in names:
            points = self._cloudwatch_points(name, desc)
            if not points and name in finals:
                points = [(0.0, finals[name])]
            for seconds, value in points:
                rows["timestamp"].append(seconds)
                rows["metric_name"].append(name)
                rows["value"].append(value)
        self._frame = pd.DataFrame(rows)
        return self._frame

    def _cloudwatch_points(self, name: str, desc: dict) -> list[tuple[float, float]]:
        from datetime import datetime, timedelta, timezone

        now = datetime.now(timezone.utc)
        start = desc.get("TrainingStartTime") or desc.get("CreationTime") or now
        # CloudWatch drops the seconds of the end time: one more minute keeps the last point.
        end = (desc.get("TrainingEndTime") or now) + timedelta(minutes=1)
        try:
            points = self.boto_session.client("cloudwatch").get_metric_statistics(
                Namespace=self.CLOUDWATCH_NAMESPACE, MetricName=name,
                Dimensions=[{"Name": "TrainingJobName", "Value": self.name}],
                StartTime=start, EndTime=end, Period=self.period,
                Statistics=["Average"])["Datapoints"]
        except Exception:  # noqa: BLE001 - no CloudWatch here: the final values stand in
            return []
        if not points:
            return []
        first = min(p["Timestamp"] for p in points)
        return sorted(((p["Timestamp"] - first).total_seconds(), float(p["Average"]))
                      for p in points)


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"


class KMeansModel:
    """A built-in K-Means model artifact served by the ``kmeans`` image (SDK v2's
    ``KMeansModel``).

    Parameters
    ----------
    model_data : str
        S3 URI of the ``model.tar.gz`` (``kmeans.model_data``).
    role : str, optional
        IAM role ARN; default the notebook's execution role.
    sagemaker_session : optional
        A SageMaker SDK session (its ``boto_session`` is used), as in v2.
    **kwargs
        ``image_uri`` (default the built-in kmeans image of the session's region), ``name``
        (default ``kmeans-<timestamp>``, given at :meth:`create`), ``env``, ``vpc_config``,
        ``enable_network_isolation``, ``boto_session``, ``poll``.

    Attributes
    ----------
    name : str or None
        The SageMaker model's name once it is created (by :meth:`deploy`, :meth:`create` or
        :meth:`transformer`).
    """

    def __init__(self, model_data: str, role: str | None = None, sagemaker_session=None,
                 **kwargs):
        unknown = sorted(set(kwargs) - set(_MODEL_KWARGS))
        if unknown:
            raise TypeError(f"KMeansModel() got unexpected keyword argument(s) {unknown}.")
        self.model_data = model_data
        self.role = role
        self.sagemaker_session = sagemaker_session
        self.boto_session = _boto_session(kwargs.get("boto_session"), sagemaker_session)
        self.image_uri = kwargs.get("image_uri") or kwargs.get("image") or image_uri(
            KMeans.repo_name, _region(self.boto_session))
        self.name: str | None = kwargs.get("name")
        self.env = dict(kwargs.get("env") or {})
        self.vpc_config = kwargs.get("vpc_config")
        self.enable_network_isolation = bool(kwargs.get("enable_network_isolation", False))
        self.poll = float(kwargs.get("poll", 10.0))
        self._created = False

    @property
    def image(self) -> str:
        """Same as :attr:`image_uri`."""
        return self.image_uri

    def create(self) -> str:
        """``CreateModel`` (once); returns the model name."""
        if not self._created:
            from botocore.exceptions import ClientError

            self.name = self.name or name_from_base(KMeans.repo_name)
            container: dict[str, Any] = {"Image": self.image_uri,
                                         "ModelDataUrl": self.model_data}
            if self.env:
                container["Environment"] = self.env
            extra: dict[str, Any] = {}
            if self.vpc_config:
                extra["VpcConfig"] = self.vpc_config
            if self.enable_network_isolation:
                extra["EnableNetworkIsolation"] = True
            try:
                self.boto_session.client("sagemaker").create_model(
                    ModelName=self.name, ExecutionRoleArn=_execution_role(self.role),
                    PrimaryContainer=container, **extra)
            except ClientError as err:
                # A model of this name exists already (e.g. made from an attached job in another
                # notebook): use it, as SDK v2 did.
                if "already existing" not in str(err):
                    raise
            self._created = True
        return self.name

    def deploy(self, initial_instance_count: int | None = None,
               instance_type: str | None = None, serializer=None, deserializer=None,
               accelerator_type: str | None = None, endpoint_name: str | None = None,
               tags: list | None = None, wait: bool = True) -> KMeansPredictor:
        """Create the model, an endpoint config and an endpoint; returns its predictor.

        ``serializer`` and ``deserializer`` (objects with ``CONTENT_TYPE`` / ``serialize``
        and ``ACCEPT`` / ``deserialize``, as SDK v2's) are kept by the predictor; by default
        it speaks recordIO-protobuf. ``accelerator_type`` (Elastic Inference, which AWS
        retired) is refused.
        """
        if initial_instance_count is None or instance_type is None:
            raise ValueError("deploy() needs initial_instance_count and instance_type "
                             "(serverless endpoints are not supported).")
        if accelerator_type is not None:
            raise ValueError("accelerator_type (Elastic Inference) is not supported: AWS "
                             "retired it in 2024.")
        model_name = self.create()
        endpoint = _create_endpoint(self.boto_session, model_name, instance_type,
                                    initial_instance_count, endpoint_name or model_name, wait,
                                    self.poll, tags)
        return KMeansPredictor(endpoint, self.sagemaker_session, serializer, deserializer,
                               boto_session=self.boto_session, model_name=model_name)

    def transformer(self, instance_count: int, instance_type: str, **kwargs) -> Transformer:
        """A batch :class:`~tsc_toolkit.sagemaker.deploy.Transformer` for this model."""
        kwargs.setdefault("poll", self.poll)
        return Transformer(self.create(), instance_count, instance_type,
                           boto_session=self.boto_session, **kwargs)


class RecordSerializer:
    """Rows of a 2-D array as a request body: recordIO-protobuf (default), CSV, JSON or JSON
    Lines (``content_type``); SDK v2's ``RecordSerializer`` interface (``CONTENT_TYPE``,
    ``serialize``)."""

    _BYTES_PER_VALUE = {RECORDIO: 4}  # text formats take about 20

    def __init__(self, content_type: str = RECORDIO):
        self.CONTENT_TYPE = content_type

    def serialize(self, data) -> bytes | str:
        X = np.asarray(data, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        ctype = self.CONTENT_TYPE
        if ctype == RECORDIO:
            return numpy_to_record_bytes(X)
        if ctype.startswith("text/csv"):
            return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X)
        if ctype == "application/json":
            return json.dumps({"instances": [{"features": row.tolist()} for row in X]})
        return "".join(json.dumps({"features": row.tolist()}) + "\n" for row in X)

    def rows_per_request(self, width: int, limit: int = 5 * 1024 * 1024) -> int:
        """How many rows of ``width`` values fit in one request of ``limit`` bytes."""
        return max(1, limit // (self._BYTES_PER_VALUE.get(self.CONTENT_TYPE, 20) * width + 40))


class RecordDeserializer:
    """An endpoint's answer as :class:`~tsc_toolkit.sagemaker.shared.recordio.Record` objects
    (``label["closest_cluster"]``, ``label["distance_to_cluster"]``), whatever the format;
    SDK v2's ``RecordDeserializer`` interface (``ACCEPT``, ``deserialize``)."""

    def __init__(self, accept: str = RECORDIO):
        self.ACCEPT = (accept,)

    def deserialize(self, stream, content_type: str) -> list[Record]:
        try:
            return _records(stream.read(), content_type or self.ACCEPT[0])
        finally:
            stream.close()


class KMeansPredictor:
    """Query a built-in K-Means endpoint; :meth:`predict` returns v2-style records.

    Parameters
    ----------
    endpoint_name : str
    sagemaker_session : optional
        A SageMaker SDK session (its ``boto_session`` is used).
    serializer, deserializer : optional
        SDK v2-style objects; by default a :class:`RecordSerializer` for ``content_type`` and
        a :class:`RecordDeserializer` for ``accept``.
    boto_session : boto3.Session, optional
    model_name : str, optional
        The model behind the endpoint (found through the endpoint when not given).
    content_type, accept : str
        The wire format of the default serializer and deserializer: recordIO-protobuf (as
        v2's ``KMeansPredictor``), ``text/csv``, ``application/json`` or
        ``application/jsonlines``; the answers come back as
        :class:`~tsc_toolkit.sagemaker.shared.recordio.Record` objects either way.
    """

    def __init__(self, endpoint_name: str, sagemaker_session=None, serializer=None,
                 deserializer=None, *, boto_session=None, model_name: str | None = None,
                 content_type: str = RECORDIO, accept: str = RECORDIO):
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.serializer = serializer if serializer is not None else RecordSerializer(
            content_type)
        self.deserializer = deserializer if deserializer is not None else RecordDeserializer(
            accept)
        self.boto_session = _boto_session(boto_session, sagemaker_session)
        self._runtime = self.boto_session.client("sagemaker-runtime")

    @property
    def content_type(self) -> str:
        return self.serializer.CONTENT_TYPE

    @property
    def accept(self) -> str:
        accept = self.deserializer.ACCEPT
        return accept if isinstance(accept, str) else ", ".join(accept)

    def predict(self, data):
        """``closest_cluster`` and ``distance_to_cluster`` of each row of ``data`` (n, d).

        With the default serializer, large arrays go in several requests of at most 5 MB
        (the endpoints take 6 MB); a custom serializer gets ``data`` whole, as in v2, and
        the answer is what its deserializer makes of it.
        """
        if not isinstance(self.serializer, RecordSerializer):
            return self._invoke(self.serializer.serialize(data))
        X = np.asarray(data, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        step = self.serializer.rows_per_request(X.shape[1])
        records: list[Record] = []
        for start in range(0, len(X), step):
            records.extend(self._invoke(self.serializer.serialize(X[start:start + step])))
        return records

    def _invoke(self, body):
        from botocore.exceptions import ClientError

        from .deploy import EndpointError

        try:
            resp = self._runtime.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                 ContentType=self.content_type,
                                                 Accept=self.accept)
        except ClientError as err:
            info = err.response
            raise EndpointError(info.get("OriginalMessage") or str(err),
                                info.get("OriginalStatusCode")) from None
        return self.deserializer.deserialize(resp["Body"], resp.get("ContentType") or "")

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint and (by default) its endpoint config."""
        from .deploy import Predictor

        Predictor(self.endpoint_name, boto_session=self.boto_session).delete_endpoint(
            delete_endpoint_config, delete_model=False)

    def delete_model(self) -> None:
        """Delete the SageMaker model(s) behind the endpoint."""
        sm = self.boto_session.client("sagemaker")
        names = [self.model_name] if self.model_name else []
        if not names:
            config = sm.describe_endpoint(EndpointName=self.endpoint_name)["EndpointConfigName"]
            names = [v["ModelName"] for v in sm.describe_endpoint_config(
                EndpointConfigName=config)["ProductionVariants"]]
        for name in names:
            sm.delete_model(ModelName=name)


def _label_record(cluster: float, distance: float) -> Record:
    def value(x):
        return Value("float32_tensor", Tensor(np.array([x], dtype=np.float32)))

    return Record(label={"closest_cluster": value(cluster), "distance_to_cluster": value(distance)})


def _records(body: bytes, content_type: str) -> list[Record]:
    media = content_type.split(";")[0].strip().lower()
    if media == RECORDIO:
        return read_records(body)
    text = body.decode("utf-8")
    if media == "text/csv":
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
        return [_label_record(float(c), float(d)) for c, d in rows]
    preds = json.loads(text)["predictions"] if media == "application/json" else \
        [json.loads(line) for line in text.splitlines() if line.strip()]
    return [_label_record(p["closest_cluster"], p["distance_to_cluster"]) for p in preds]

