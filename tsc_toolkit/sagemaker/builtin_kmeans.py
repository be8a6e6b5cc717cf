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

__all__ = ["KMeans", "KMeansModel", "KMeansPredictor", "RecordSet", "JobFailedError"]

_VALID_METRICS = ("msd", "ssd")
_EXTRA_KWARGS = ("data_location", "output_path", "base_job_name", "sagemaker_session",
                 "boto_session", "volume_size", "max_run", "tags", "input_mode",
                 "output_kms_key", "default_bucket", "image_uri", "poll", "environment",
                 "use_spot_instances", "max_wait", "checkpoint_s3_uri")
# v2 kwarg -> (container hyperparameter name)
_HP_NAMES = {"k": "k", "init_method": "init_method", "max_iterations": "local_lloyd_max_iter",
             "tol": "local_lloyd_tol", "num_trials": "local_lloyd_num_trials",
             "local_init_method": "local_lloyd_init_method",
             "half_life_time_size": "half_life_time_size", "epochs": "epochs",
             "center_factor": "extra_center_factor", "eval_metrics": "eval_metrics"}


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


def _check(name: str, value, ok: bool, rule: str) -> None:
    if not ok:
        raise ValueError(f"Invalid hyperparameter {name}={value!r}: {rule}.")


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
    **kwargs
        ``data_location`` (``s3://`` prefix for :meth:`record_set`), ``output_path``,
        ``base_job_name``, ``boto_session`` or ``sagemaker_session``, ``default_bucket``,
        ``volume_size``, ``max_run``, ``tags``, ``input_mode``, ``output_kms_key``,
        ``image_uri``, ``poll`` (seconds between status checks); ``train_instance_count`` and
        ``train_instance_type`` are deprecated aliases of ``instance_count`` and
        ``instance_type``.
    """

    repo_name = "kmeans"

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
        _check("k", k, isinstance(k, (int, np.integer)) and k > 1, "an integer > 1")
        if init_method is not None:
            _check("init_method", init_method, init_method in ("random", "kmeans++"),
                   "'random' or 'kmeans++'")
        if local_init_method is not None:
            _check("local_init_method", local_init_method,
                   local_init_method in ("random", "kmeans++"), "'random' or 'kmeans++'")
        for name, value, minimum in (("max_iterations", max_iterations, 1),
                                     ("num_trials", num_trials, 1), ("epochs", epochs, 1),
                                     ("center_factor", center_factor, 1),
                                     ("half_life_time_size", half_life_time_size, 0)):
            if value is not None and not (name in ("num_trials", "center_factor")
                                          and value == "auto"):
                _check(name, value, isinstance(value, (int, np.integer)) and value >= minimum,
                       f"an integer >= {minimum}")
        if tol is not None:
            _check("tol", tol, 0 <= float(tol) <= 1, "a number in [0, 1]")
        if eval_metrics is not None:
            _check("eval_metrics", eval_metrics,
                   not isinstance(eval_metrics, str)
                   and all(m in _VALID_METRICS for m in eval_metrics),
                   "a list of 'msd' and/or 'ssd'")
        self.role = role
        self.instance_count = int(instance_count)
        self.instance_type = instance_type
        self.k = k
        self.init_method = init_method
        self.max_iterations = max_iterations
        self.tol = tol
        self.num_trials = num_trials
        self.local_init_method = local_init_method
        self.half_life_time_size = half_life_time_size
        self.epochs = epochs
        self.center_factor = center_factor
        self.eval_metrics = list(eval_metrics) if eval_metrics is not None else None
        self.boto_session = _boto_session(kwargs.get("boto_session"),
                                          kwargs.get("sagemaker_session"))
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
        self.feature_dim: int | None = None
        self.mini_batch_size: int | None = None
        self.latest_training_job: str | None = None
        self._models: dict[str, KMeansModel] = {}

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
        hps = {"force_dense": "True"}
        for attr, name in _HP_NAMES.items():
            value = getattr(self, attr)
            if value is not None:
                hps[name] = json.dumps(value) if isinstance(value, list) else str(value)
        if self.feature_dim is not None:
            hps["feature_dim"] = str(self.feature_dim)
        if self.mini_batch_size is not None:
            hps["mini_batch_size"] = str(self.mini_batch_size)
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

    def fit(self, records: RecordSet | list[RecordSet], mini_batch_size: int | None = None,
            wait: bool = True, logs: bool = True, job_name: str | None = None) -> None:
        """Start a training job of the built-in image on ``records`` (a RecordSet or a list
        with a ``train`` channel and optionally a ``test`` channel)."""
        record_list = records if isinstance(records, list) else [records]
        train = next((r for r in record_list if r.channel == "train"), None)
        if train is None:
            raise ValueError("Must provide train channel.")
        self.feature_dim = int(train.feature_dim)
        self.mini_batch_size = int(mini_batch_size) if mini_batch_size is not None else 5000
        if self.mini_batch_size < 1:
            raise ValueError("mini_batch_size must be positive.")
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
        self.latest_training_job = name
        if logs:
            print(f"Training job {name} started ({self.instance_count} x "
                  f"{self.instance_type}).", file=sys.stderr, flush=True)
        if wait:
            self.wait(logs=logs)

    def describe(self) -> dict:
        """``DescribeTrainingJob`` of the latest job."""
        if self.latest_training_job is None:
            raise ValueError("No training job yet: call fit() or KMeans.attach().")
        return self.boto_session.client("sagemaker").describe_training_job(
            TrainingJobName=self.latest_training_job)

    def wait(self, logs: bool = True) -> dict:
        """Block until the latest training job ends; raise :class:`JobFailedError` on failure."""
        desc = wait_for(self.describe, "TrainingJobStatus", done=("Completed",),
                        failed=("Failed", "Stopped"), poll=self.poll)
        if logs:
            metrics = ", ".join(f"{m['MetricName']}={m['Value']:.6g}"
                                for m in desc.get("FinalMetricDataList", []))
            print(f"Training job {self.latest_training_job} completed"
                  + (f": {metrics}" if metrics else "."), file=sys.stderr, flush=True)
        return desc

    @property
    def model_data(self) -> str:
        """S3 URI of the latest job's ``model.tar.gz`` (holding ``model_algo-1``)."""
        return self.describe()["ModelArtifacts"]["S3ModelArtifacts"]

    @classmethod
    def attach(cls, training_job_name: str, sagemaker_session=None, boto_session=None,
               **kwargs) -> KMeans:
        """Rebuild the estimator of an earlier training job (its hyperparameters, role,
        instances and output path), ready for :meth:`deploy` or :meth:`model_data`."""
        session = _boto_session(boto_session, sagemaker_session)
        desc = session.client("sagemaker").describe_training_job(
            TrainingJobName=training_job_name)
        hps = desc.get("HyperParameters", {})
        params: dict[str, Any] = {}
        parse = {"k": int, "local_lloyd_max_iter": int, "local_lloyd_num_trials": _int_or_str,
                 "half_life_time_size": int, "epochs": int, "extra_center_factor": _int_or_str,
                 "local_lloyd_tol": float, "init_method": str, "local_lloyd_init_method": str,
                 "eval_metrics": lambda v: json.loads(v.replace("'", '"'))}
        for attr, name in _HP_NAMES.items():
            if name in hps:
                params[attr] = parse[name](hps[name])
        res = desc["ResourceConfig"]
        est = cls(role=desc.get("RoleArn"), instance_count=res["InstanceCount"],
                  instance_type=res["InstanceType"], boto_session=session,
                  output_path=desc.get("OutputDataConfig", {}).get("S3OutputPath"),
                  image_uri=desc["AlgorithmSpecification"].get("TrainingImage"),
                  volume_size=res.get("VolumeSizeInGB", 30), **params, **kwargs)
        if "feature_dim" in hps:
            est.feature_dim = int(hps["feature_dim"])
        if "mini_batch_size" in hps:
            est.mini_batch_size = int(hps["mini_batch_size"])
        est.latest_training_job = training_job_name
        return est

    # ------------------------------------------------------------------- serving

    def create_model(self, role: str | None = None, name: str | None = None) -> KMeansModel:
        """A :class:`KMeansModel` of the latest job's artifact (created on SageMaker on
        first use). The same one for every call with the same name, so :meth:`deploy` then
        :meth:`transformer` create the SageMaker model once."""
        name = name or self.latest_training_job
        model = self._models.get(name)
        if model is None or (role is not None and role != model.role):
            model = KMeansModel(self.model_data, role or self.role,
                                image=self.training_image_uri(), name=name,
                                boto_session=self.boto_session, poll=self.poll)
            self._models[name] = model
        return model

    def deploy(self, initial_instance_count: int, instance_type: str,
               endpoint_name: str | None = None, wait: bool = True, **kwargs) -> KMeansPredictor:
        """Host the latest model on an endpoint; returns a :class:`KMeansPredictor`."""
        return self.create_model().deploy(initial_instance_count, instance_type,
                                          endpoint_name=endpoint_name, wait=wait, **kwargs)

    def transformer(self, instance_count: int, instance_type: str, strategy: str | None = None,
                    assemble_with: str | None = None, output_path: str | None = None,
                    accept: str | None = None, max_payload: int | None = None,
                    **kwargs) -> Transformer:
        """A batch :class:`~tsc_toolkit.sagemaker.deploy.Transformer` for the latest model."""
        return self.create_model().transformer(instance_count, instance_type, strategy=strategy,
                                               assemble_with=assemble_with,
                                               output_path=output_path, accept=accept,
                                               max_payload=max_payload, **kwargs)


def _int_or_str(v: str):
    return int(v) if v.strip().isdigit() else v


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"


class KMeansModel:
    """A built-in K-Means model artifact served by the ``kmeans`` image."""

    def __init__(self, model_data: str, role: str | None, *, image: str, name: str | None = None,
                 boto_session=None, sagemaker_session=None, poll: float = 10.0):
        self.model_data = model_data
        self.role = role
        self.image = image
        self.name = name or name_from_base("kmeans")
        self.boto_session = _boto_session(boto_session, sagemaker_session)
        self.poll = poll
        self._created = False

    def create(self) -> str:
        """``CreateModel`` (once); returns the model name."""
        if not self._created:
            from botocore.exceptions import ClientError

            try:
                self.boto_session.client("sagemaker").create_model(
                    ModelName=self.name, ExecutionRoleArn=_execution_role(self.role),
                    PrimaryContainer={"Image": self.image, "ModelDataUrl": self.model_data})
            except ClientError as err:
                # A model of this name exists already (e.g. made from an attached job in another
                # notebook): use it, as SDK v2 did.
                if "already existing" not in str(err):
                    raise
            self._created = True
        return self.name

    def deploy(self, initial_instance_count: int, instance_type: str,
               endpoint_name: str | None = None, wait: bool = True,
               tags: list | None = None) -> KMeansPredictor:
        """Create the model, an endpoint config and an endpoint; returns its predictor."""
        model_name = self.create()
        endpoint = _create_endpoint(self.boto_session, model_name, instance_type,
                                    initial_instance_count, endpoint_name or model_name, wait,
                                    self.poll, tags)
        return KMeansPredictor(endpoint, boto_session=self.boto_session, model_name=model_name)

    def transformer(self, instance_count: int, instance_type: str, **kwargs) -> Transformer:
        """A batch :class:`~tsc_toolkit.sagemaker.deploy.Transformer` for this model."""
        kwargs.setdefault("poll", self.poll)
        return Transformer(self.create(), instance_count, instance_type,
                           boto_session=self.boto_session, **kwargs)


class KMeansPredictor:
    """Query a built-in K-Means endpoint; :meth:`predict` returns v2-style records.

    ``content_type`` / ``accept`` choose the wire format: recordIO-protobuf (the default, as
    v2's ``KMeansPredictor``), ``text/csv``, ``application/json`` or ``application/jsonlines``;
    the answers come back as :class:`~tsc_toolkit.sagemaker.shared.recordio.Record` objects either way.
    """

    def __init__(self, endpoint_name: str, *, boto_session=None, sagemaker_session=None,
                 model_name: str | None = None, content_type: str = RECORDIO,
                 accept: str = RECORDIO):
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.content_type = content_type
        self.accept = accept
        self.boto_session = _boto_session(boto_session, sagemaker_session)
        self._runtime = self.boto_session.client("sagemaker-runtime")

    def predict(self, data: np.ndarray) -> list[Record]:
        """``closest_cluster`` and ``distance_to_cluster`` of each row of ``data`` (n, d).

        Large arrays go in several requests of at most 5 MB (the endpoints take 6 MB).
        """
        X = np.asarray(data, dtype=np.float32)
        if X.ndim == 1:
            X = X[None, :]
        # recordIO costs 4 bytes a value; text formats about 20
        per_row = (4 if self.content_type == RECORDIO else 20) * X.shape[1] + 40
        step = max(1, (5 * 1024 * 1024) // per_row)
        records: list[Record] = []
        for start in range(0, len(X), step):
            records.extend(self._predict_chunk(X[start:start + step]))
        return records

    def _predict_chunk(self, X: np.ndarray) -> list[Record]:
        from botocore.exceptions import ClientError

        from .deploy import EndpointError

        if self.content_type == RECORDIO:
            body: bytes | str = numpy_to_record_bytes(X)
        elif self.content_type.startswith("text/csv"):
            body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in X)
        elif self.content_type == "application/json":
            body = json.dumps({"instances": [{"features": row.tolist()} for row in X]})
        else:
            body = "".join(json.dumps({"features": row.tolist()}) + "\n" for row in X)
        try:
            resp = self._runtime.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                 ContentType=self.content_type,
                                                 Accept=self.accept)
        except ClientError as err:
            info = err.response
            raise EndpointError(info.get("OriginalMessage") or str(err),
                                info.get("OriginalStatusCode")) from None
        return _records(resp["Body"].read(), resp.get("ContentType") or self.accept)

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint and (by default) its endpoint config."""
        from .deploy import Predictor

        Predictor(self.endpoint_name, boto_session=self.boto_session).delete_endpoint(
            delete_endpoint_config, delete_model=False)

    def delete_model(self) -> None:
        """Delete the SageMaker model behind the endpoint."""
        if self.model_name:
            self.boto_session.client("sagemaker").delete_model(ModelName=self.model_name)


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

