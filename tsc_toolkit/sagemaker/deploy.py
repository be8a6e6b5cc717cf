"""Deploy a CNN-KMeans model to a SageMaker endpoint, or run a batch transform, from a notebook.

A real-time endpoint::

    from tsc_toolkit.sagemaker.deploy import deploy
    predictor = deploy(job, "ml.m5.large", role=role)     # job handle, S3 URI, folder or model
    df = predictor.predict(X)                              # columns label, distance, embedding
    predictor.delete_endpoint()

A batch transform over every file of an S3 prefix (fg-style CSV, one series per line)::

    from tsc_toolkit.sagemaker.deploy import batch_predict
    result = batch_predict(job, "s3://bucket/series/", "s3://bucket/predictions/", role=role)
    result.predictions()                                   # one row per input line

The model archive is repacked the way SageMaker's PyTorch inference container expects it:
the model files at the root, ``code/inference.py`` (which re-exports
:mod:`tsc_toolkit.sagemaker.container.inference`), ``code/requirements.txt`` and a copy of the toolkit's
Python sources in ``code/tsc_toolkit`` (the container puts ``code/`` on ``sys.path``), so the
stock PyTorch inference image serves it. Everything goes through boto3 calls
(``CreateModel``, ``CreateEndpointConfig``, ``CreateEndpoint``, ``CreateTransformJob``); the image
URI comes from the SageMaker SDK v3's ``image_uris.retrieve``.

Requests to the endpoint are JSON (``{"instances": [{"series": [[...], ...]}]}``), cut into
pieces below the 6 MB payload limit of real-time endpoints.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..io.archives import extract_tar
from ..resources import source_files
from .shared.aws import split_s3_uri

__all__ = ["deploy", "batch_predict", "create_model", "package_model", "Predictor",
           "Transformer", "TransformResult", "EndpointError", "JobFailedError"]

#: Inference image defaults (the newest PyTorch inference versions in SDK 3.27's table).
PYTORCH_VERSION = "2.6.0"
PY_VERSION = "py312"
_REQUIREMENTS = ["scikit-learn>=1.5", "scipy>=1.10", "pandas>=2.0", "safetensors>=0.4",
                 "tqdm>=4.66"]
_SHIM = '''"""SageMaker PyTorch inference entry point: tsc_toolkit's CNN-KMeans handlers."""

from tsc_toolkit.sagemaker.container.inference import input_fn, model_fn, output_fn, predict_fn  # noqa: F401
'''
_REQUEST_BYTES = 5 * 1024 * 1024  # below the endpoints' 6 MB limit


class EndpointError(RuntimeError):
    """An endpoint answered with an error; ``status`` is the container's HTTP status."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class JobFailedError(RuntimeError):
    """A SageMaker job ended as Failed or Stopped; the message holds its failure reason."""


# ----------------------------------------------------------------------- sessions

def _boto_session(boto_session=None, sagemaker_session=None):
    if boto_session is not None:
        return boto_session
    if sagemaker_session is not None and getattr(sagemaker_session, "boto_session", None):
        return sagemaker_session.boto_session
    try:
        import boto3
    except ImportError:  # pragma: no cover
        raise ImportError("SageMaker support needs boto3: pip install 'tsc_toolkit[sagemaker]'"
                          ) from None
    # boto3's default session (what boto3.client() uses), so that handlers registered on it
    # (the offline harness's) apply here too.
    return boto3.DEFAULT_SESSION or boto3.Session()


def _region(session) -> str:
    region = session.region_name
    if not region:
        raise ValueError("No AWS region: set AWS_DEFAULT_REGION or pass a boto3.Session with "
                         "region_name.")
    return region


def default_bucket(session) -> str:
    """``sagemaker-<region>-<account>``, created when missing (as the SDK's default bucket)."""
    region = _region(session)
    account = session.client("sts").get_caller_identity()["Account"]
    bucket = f"sagemaker-{region}-{account}"
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except Exception:  # 404 or 403; creating tells which
        kwargs = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **kwargs)
    return bucket


def _execution_role(role: str | None) -> str:
    if role:
        return role
    try:
        from sagemaker.core.helper.session_helper import get_execution_role

        return get_execution_role()
    except Exception as err:
        raise ValueError("Pass role= (an IAM role ARN SageMaker can assume); no execution "
                         f"role could be found: {err}") from None


def _role_of(model) -> str | None:
    """The role of a job handle (its ``role``, or the ``RoleArn`` its ``describe()`` gives)."""
    role = getattr(model, "role", None)
    if role is None and callable(getattr(model, "describe", None)):
        try:
            role = model.describe().get("RoleArn")
        except Exception:  # not a job handle after all
            role = None
    return role if isinstance(role, str) else None


def name_from_base(base: str) -> str:
    """``base-YYYY-mm-dd-HH-MM-SS-mmm``, as the SDK names jobs (at most 63 characters)."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now)) + f"-{int(now * 1000) % 1000:03d}"
    return f"{base[:63 - len(stamp) - 1]}-{stamp}"


def image_uri(framework: str, region: str, **kwargs) -> str:
    """The ECR image of ``framework`` (``"kmeans"``, ``"pytorch"``) through SDK v3."""
    try:
        from sagemaker.core import image_uris
    except ImportError:  # pragma: no cover
        raise ImportError("Image lookup needs the SageMaker SDK v3: "
                          "pip install 'tsc_toolkit[sagemaker]'") from None
    return image_uris.retrieve(framework, region, **kwargs)


def wait_for(describe, status_key: str, *, done=("InService", "Completed"),
             failed=("Failed", "Stopped", "OutOfService"), poll: float = 10.0,
             timeout: float | None = None) -> dict:
    """Call ``describe()`` until its ``status_key`` is in ``done``; raise on ``failed``."""
    start = time.monotonic()
    while True:
        desc = describe()
        status = desc.get(status_key)
        if status in done:
            return desc
        if status in failed:
            raise JobFailedError(f"{status}: {desc.get('FailureReason', 'no reason given')}")
        if timeout is not None and time.monotonic() - start > timeout:
            raise TimeoutError(f"Still {status} after {timeout} s.")
        time.sleep(poll)


# ------------------------------------------------------------------------ packaging

def _model_files(model, session, workdir: Path) -> Path:
    """A local folder holding the model files of ``model`` (see :func:`package_model`)."""
    data = getattr(model, "model_data", None)
    if data is not None and not isinstance(model, (str, os.PathLike)):
        model = data() if callable(data) else data
    target = workdir / "model"
    if hasattr(model, "save") and hasattr(model, "cluster_centers_"):
        model.save(target)
        return target
    if isinstance(model, str) and model.startswith("s3://"):
        bucket, key = split_s3_uri(model)
        archive = workdir / "source.tar.gz"
        session.client("s3").download_file(bucket, key, str(archive))
        model = archive
    path = Path(model)
    if path.is_dir():
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path) as tar:
            extract_tar(tar, target)
        return target
    raise ValueError(f"Cannot find a model in {model!r}: pass a fitted CNNKMeans, a saved model "
                     "folder, a model.tar.gz (local or s3://), or a training job handle.")


def package_model(model, path: str | os.PathLike, *, boto_session=None) -> Path:
    """Write ``model.tar.gz`` for SageMaker's PyTorch inference container.

    ``model`` is a fitted CNNKMeans, a folder written by ``CNNKMeans.save``, a
    ``model.tar.gz`` (local path or ``s3://`` URI), or a training job handle (anything with a
    ``model_data`` S3 URI). The archive holds the model files at its root, plus
    ``code/inference.py``, ``code/requirements.txt`` and ``code/tsc_toolkit/``.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="tsc-package-") as tmp:
        session = boto_session if boto_session is not None else None
        if session is None and (isinstance(model, str) and model.startswith("s3://")
                                or getattr(model, "model_data", None) is not None):
            session = _boto_session()
        folder = _model_files(model, session, Path(tmp))
        if not (folder / "config.json").is_file():
            raise ValueError(f"{model!r} does not hold a CNN-KMeans model (no config.json).")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w:gz") as tar:
            for f in sorted(folder.iterdir()):
                if f.name != "code":
                    tar.add(f, arcname=f.name)
            _add_text(tar, "code/inference.py", _SHIM)
            _add_text(tar, "code/requirements.txt", "\n".join(_REQUIREMENTS) + "\n")
            for src, name in source_files():
                tar.add(src, arcname=f"code/tsc_toolkit/{name}")
    return path


def _add_text(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = int(time.time())
    tar.addfile(info, io.BytesIO(data))


def create_model(model, *, role: str | None = None, instance_type: str = "ml.m5.large",
                 name: str | None = None, boto_session=None, sagemaker_session=None,
                 bucket: str | None = None, image: str | None = None,
                 framework_version: str = PYTORCH_VERSION, py_version: str = PY_VERSION,
                 environment: Mapping[str, str] | None = None, tags: list | None = None) -> str:
    """Repack ``model`` (see :func:`package_model`), upload it, and ``CreateModel``; returns
    the model's name."""
    session = _boto_session(boto_session or getattr(model, "boto_session", None),
                            sagemaker_session)
    region = _region(session)
    role = _execution_role(role or _role_of(model))
    name = name or name_from_base("tsc-cnn-kmeans")
    bucket = bucket or default_bucket(session)
    with tempfile.TemporaryDirectory(prefix="tsc-deploy-") as tmp:
        archive = package_model(model, Path(tmp) / "model.tar.gz", boto_session=session)
        key = f"{name}/model.tar.gz"
        session.client("s3").upload_file(str(archive), bucket, key)
    image = image or image_uri("pytorch", region, version=framework_version,
                               py_version=py_version, instance_type=instance_type,
                               image_scope="inference")
    env = {"SAGEMAKER_PROGRAM": "inference.py",
           "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
           "SAGEMAKER_CONTAINER_LOG_LEVEL": "20", "SAGEMAKER_REGION": region,
           **(environment or {})}
    kwargs: dict[str, Any] = {"Tags": tags} if tags else {}
    session.client("sagemaker").create_model(
        ModelName=name, ExecutionRoleArn=role,
        PrimaryContainer={"Image": image, "ModelDataUrl": f"s3://{bucket}/{key}",
                          "Environment": env}, **kwargs)
    return name


# ------------------------------------------------------------------------ endpoints

def _create_endpoint(session, model_name: str, instance_type: str, count: int,
                     endpoint_name: str | None, wait: bool, poll: float, tags=None) -> str:
    sm = session.client("sagemaker")
    endpoint_name = endpoint_name or model_name
    kwargs: dict[str, Any] = {"Tags": tags} if tags else {}
    sm.create_endpoint_config(EndpointConfigName=endpoint_name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": model_name,
        "InitialInstanceCount": int(count), "InstanceType": instance_type,
        "InitialVariantWeight": 1.0}], **kwargs)
    sm.create_endpoint(EndpointName=endpoint_name, EndpointConfigName=endpoint_name, **kwargs)
    if wait:
        wait_for(lambda: sm.describe_endpoint(EndpointName=endpoint_name), "EndpointStatus",
                 poll=poll)
    return endpoint_name


class Predictor:
    """Send series to a deployed CNN-KMeans endpoint.

    Parameters
    ----------
    endpoint_name : str
    boto_session : boto3.Session, optional
    model_name : str, optional
        Deleted with the endpoint by :meth:`delete_endpoint` when given.
    """

    def __init__(self, endpoint_name: str, *, boto_session=None, model_name: str | None = None):
        self.endpoint_name = endpoint_name
        self.model_name = model_name
        self.boto_session = _boto_session(boto_session)
        self._runtime = self.boto_session.client("sagemaker-runtime")

    def invoke(self, body: str | bytes, content_type: str = "application/json",
               accept: str = "application/json") -> bytes:
        """One raw request; returns the response body. Raises :class:`EndpointError`."""
        from botocore.exceptions import ClientError

        try:
            resp = self._runtime.invoke_endpoint(EndpointName=self.endpoint_name, Body=body,
                                                 ContentType=content_type, Accept=accept)
        except ClientError as err:
            info = err.response
            raise EndpointError(info.get("OriginalMessage") or str(err),
                                info.get("OriginalStatusCode")) from None
        return resp["Body"].read()

    def predict(self, X, *, channels: int | None = None, max_series_per_request: int = 200):
        """Cluster, distance to its center and embedding of each series of ``X``.

        ``X`` is anything :func:`tsc_toolkit.data.as_dataset` accepts. Returns a DataFrame
        with columns ``label`` (int), ``distance`` (float) and ``embedding`` (an array per
        row), in the order of ``X``. Series go in requests of at most 5 MB and
        ``max_series_per_request`` series, so that answers (about 20 bytes per embedding
        value) stay below the endpoints' 6 MB response limit too.
        """
        import pandas as pd

        from ..data import as_dataset, series_lengths

        data = as_dataset(X)
        if channels is not None and data.shape[1] != channels:
            raise ValueError(f"X has {data.shape[1]} channel(s), not {channels}.")
        lengths = series_lengths(data)
        instances = [json.dumps({"series": [[None if np.isnan(v) else float(v)
                                             for v in ch[:n]] for ch in s]})
                     for s, n in zip(data, lengths)]
        rows: list[dict] = []
        for chunk in _chunks(instances, _REQUEST_BYTES, max_series_per_request):
            body = '{"instances": [' + ", ".join(chunk) + "]}"
            rows.extend(json.loads(self.invoke(body))["predictions"])
        return pd.DataFrame({
            "label": np.array([r["closest_cluster"] for r in rows], dtype=np.int64),
            "distance": np.array([r["distance_to_cluster"] for r in rows], dtype=np.float64),
            "embedding": [np.asarray(r["embedding"], dtype=np.float32) for r in rows]})

    def delete_endpoint(self, delete_endpoint_config: bool = True,
                        delete_model: bool = True) -> None:
        """Delete the endpoint (stops its billing), its config, and its model."""
        sm = self.boto_session.client("sagemaker")
        config = None
        if delete_endpoint_config:
            try:
                config = sm.describe_endpoint(EndpointName=self.endpoint_name)[
                    "EndpointConfigName"]
            except Exception:  # already gone: delete what is left
                config = self.endpoint_name
        sm.delete_endpoint(EndpointName=self.endpoint_name)
        if config:
            sm.delete_endpoint_config(EndpointConfigName=config)
        if delete_model and self.model_name:
            sm.delete_model(ModelName=self.model_name)

    def __repr__(self) -> str:
        return f"Predictor(endpoint_name={self.endpoint_name!r})"


def _chunks(items: list[str], limit: int, max_items: int):
    chunk: list[str] = []
    size = 0
    for item in items:
        if chunk and (size + len(item) + 2 > limit or len(chunk) >= max_items):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item) + 2
    if chunk:
        yield chunk


def deploy(model, instance_type: str = "ml.m5.large", initial_instance_count: int = 1, *,
           role: str | None = None, endpoint_name: str | None = None, boto_session=None,
           sagemaker_session=None, bucket: str | None = None, image: str | None = None,
           framework_version: str = PYTORCH_VERSION, py_version: str = PY_VERSION,
           environment: Mapping[str, str] | None = None, tags: list | None = None,
           wait: bool = True, poll: float = 15.0) -> Predictor:
    """Deploy a CNN-KMeans model to a real-time endpoint; returns its :class:`Predictor`.

    ``model`` is a training job handle (anything with ``model_data``), an ``s3://`` URI of a
    ``model.tar.gz``, a local model folder or archive, or a fitted CNNKMeans. The endpoint
    bills by the hour until :meth:`Predictor.delete_endpoint`.
    """
    session = _boto_session(boto_session or getattr(model, "boto_session", None),
                            sagemaker_session)
    model_name = create_model(model, role=role, instance_type=instance_type,
                              name=endpoint_name, boto_session=session, bucket=bucket,
                              image=image, framework_version=framework_version,
                              py_version=py_version, environment=environment, tags=tags)
    name = _create_endpoint(session, model_name, instance_type, initial_instance_count,
                            endpoint_name or model_name, wait, poll, tags)
    return Predictor(name, boto_session=session, model_name=model_name)


# ------------------------------------------------------------------- batch transform

class TransformResult:
    """The outcome of a batch transform: its job, and the ``.out`` files it wrote."""

    def __init__(self, job_name: str, output_path: str, accept: str, session):
        self.job_name = job_name
        self.output_path = output_path.rstrip("/") + "/"
        self.accept = accept
        self._session = session

    def outputs(self) -> dict[str, bytes]:
        """``{key relative to the output path: bytes}`` of every ``.out`` file."""
        s3 = self._session.client("s3")
        bucket, prefix = split_s3_uri(self.output_path)
        out: dict[str, bytes] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".out"):
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                    out[obj["Key"][len(prefix):]] = body
        return dict(sorted(out.items()))

    def predictions(self):
        """Every output line as a DataFrame: ``file`` (input file), ``row`` (its line),
        ``label``, ``embedding`` and, for JSON outputs, ``distance``."""
        import pandas as pd

        records = []
        for name, body in self.outputs().items():
            source = name[: -len(".out")]
            text = body.decode("utf-8")
            if self.accept.startswith("text/csv"):
                for i, line in enumerate(text.splitlines()):
                    values = [float(v) for v in line.split(",")]
                    records.append({"file": source, "row": i, "label": int(values[0]),
                                    "embedding": np.asarray(values[1:], dtype=np.float32)})
            else:
                preds = (json.loads(text)["predictions"] if self.accept == "application/json"
                         else [json.loads(x) for x in text.splitlines() if x.strip()])
                for i, p in enumerate(preds):
                    records.append({"file": source, "row": i,
                                    "label": int(p["closest_cluster"]),
                                    "distance": float(p["distance_to_cluster"]),
                                    "embedding": np.asarray(p["embedding"], dtype=np.float32)})
        return pd.DataFrame.from_records(records)

    def __repr__(self) -> str:
        return f"TransformResult(job_name={self.job_name!r}, output_path={self.output_path!r})"


class Transformer:
    """Run batch transform jobs with a SageMaker model (boto3 ``CreateTransformJob``).

    Parameters mirror SDK v2's ``Transformer``: ``model_name``, ``instance_count``,
    ``instance_type``, ``strategy`` (``"MultiRecord"`` or ``"SingleRecord"``),
    ``assemble_with`` (``"Line"`` or ``"None"``), ``output_path`` (``s3://``), ``accept``,
    ``max_payload`` (MB), ``max_concurrent_transforms``, ``env``, ``tags``.
    """

    def __init__(self, model_name: str, instance_count: int, instance_type: str, *,
                 strategy: str | None = None, assemble_with: str | None = None,
                 output_path: str | None = None, accept: str | None = None,
                 max_payload: int | None = None, max_concurrent_transforms: int | None = None,
                 env: Mapping[str, str] | None = None, tags: list | None = None,
                 base_transform_job_name: str | None = None, boto_session=None,
                 sagemaker_session=None, poll: float = 10.0):
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.output_path = output_path
        self.accept = accept
        self.max_payload = max_payload
        self.max_concurrent_transforms = max_concurrent_transforms
        self.env = dict(env or {})
        self.tags = tags
        self.base_transform_job_name = base_transform_job_name or model_name
        self.boto_session = _boto_session(boto_session, sagemaker_session)
        self.poll = poll
        self.latest_transform_job: str | None = None

    def transform(self, data: str, data_type: str = "S3Prefix", content_type: str | None = None,
                  compression_type: str | None = None, split_type: str | None = None,
                  job_name: str | None = None, wait: bool = True, logs: bool = False
                  ) -> TransformResult:
        """Start a transform job over the S3 prefix (or manifest) ``data``."""
        sm = self.boto_session.client("sagemaker")
        name = job_name or name_from_base(self.base_transform_job_name)
        if self.output_path is None:
            self.output_path = f"s3://{default_bucket(self.boto_session)}/{name}"
        tin: dict[str, Any] = {"DataSource": {"S3DataSource": {"S3DataType": data_type,
                                                               "S3Uri": data}},
                               "CompressionType": compression_type or "None",
                               "SplitType": split_type or "None"}
        if content_type:
            tin["ContentType"] = content_type
        tout: dict[str, Any] = {"S3OutputPath": self.output_path,
                                "AssembleWith": self.assemble_with or "None"}
        if self.accept:
            tout["Accept"] = self.accept
        kwargs: dict[str, Any] = {}
        if self.strategy:
            kwargs["BatchStrategy"] = self.strategy
        if self.max_payload is not None:
            kwargs["MaxPayloadInMB"] = int(self.max_payload)
        if self.max_concurrent_transforms is not None:
            kwargs["MaxConcurrentTransforms"] = int(self.max_concurrent_transforms)
        if self.env:
            kwargs["Environment"] = self.env
        if self.tags:
            kwargs["Tags"] = self.tags
        sm.create_transform_job(
            TransformJobName=name, ModelName=self.model_name, TransformInput=tin,
            TransformOutput=tout, TransformResources={"InstanceType": self.instance_type,
                                                      "InstanceCount": self.instance_count},
            **kwargs)
        self.latest_transform_job = name
        if logs:
            print(f"Transform job {name} started.", flush=True)
        if wait:
            self.wait()
        return TransformResult(name, self.output_path, self.accept or "", self.boto_session)

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the latest job ends; raise :class:`JobFailedError` if it failed."""
        if self.latest_transform_job is None:
            raise ValueError("No transform job started yet.")
        sm = self.boto_session.client("sagemaker")
        return wait_for(lambda: sm.describe_transform_job(
            TransformJobName=self.latest_transform_job), "TransformJobStatus",
            poll=self.poll, timeout=timeout)

    def describe(self) -> dict:
        """``DescribeTransformJob`` of the latest job."""
        return self.boto_session.client("sagemaker").describe_transform_job(
            TransformJobName=self.latest_transform_job)


def batch_predict(model, s3_input_prefix: str, s3_output_prefix: str, *,
                  role: str | None = None, instance_type: str = "ml.m5.large",
                  instance_count: int = 1, content_type: str = "text/csv",
                  accept: str = "text/csv", strategy: str = "MultiRecord",
                  max_payload: int = 6, job_name: str | None = None, boto_session=None,
                  sagemaker_session=None, bucket: str | None = None, image: str | None = None,
                  wait: bool = True, poll: float = 10.0) -> TransformResult:
    """Cluster every series of every file under an S3 prefix with a batch transform job.

    Each input file (fg-style CSV by default: one series per line) gives
    ``<s3_output_prefix>/<file>.out`` with one line per input line (``SplitType=Line``,
    ``AssembleWith=Line``); with ``accept="text/csv"`` a line is the cluster label then the
    embedding, as fg-research's batch transform writes. ``model`` is what :func:`deploy` takes,
    or the name of an existing SageMaker model. Call :meth:`TransformResult.predictions` to read
    the results back as a DataFrame.

    SageMaker gives each S3 object to one of the ``instance_count`` instances, so the prefix
    needs at least that many files to keep them all busy (a warning says when it has fewer;
    :func:`tsc_toolkit.sagemaker.staging.upload_series` splits a large collection into parts).
    Within a file, ``SplitType=Line`` with ``strategy="MultiRecord"`` sends as many lines per
    request as fit in ``max_payload`` MB (SageMaker allows 1 to 100), so a file of any size
    streams through in bounded requests.
    """
    if strategy not in ("MultiRecord", "SingleRecord"):
        raise ValueError(f"strategy must be 'MultiRecord' or 'SingleRecord', got {strategy!r}.")
    if not 0 < max_payload <= 100:
        raise ValueError(f"max_payload is MaxPayloadInMB: 1 to 100, got {max_payload!r}.")
    session = _boto_session(boto_session or getattr(model, "boto_session", None),
                            sagemaker_session)
    _warn_if_fewer_files_than_instances(session, s3_input_prefix, instance_count)
    if isinstance(model, str) and not model.startswith("s3://") and not Path(model).exists():
        model_name = model
    else:
        model_name = create_model(model, role=role, instance_type=instance_type,
                                  boto_session=session, bucket=bucket, image=image)
    transformer = Transformer(model_name, instance_count, instance_type, strategy=strategy,
                              assemble_with="Line", output_path=s3_output_prefix,
                              accept=accept, max_payload=max_payload, boto_session=session,
                              poll=poll)
    return transformer.transform(s3_input_prefix, content_type=content_type, split_type="Line",
                                 job_name=job_name or name_from_base("tsc-cnn-kmeans-transform"),
                                 wait=wait)



def _warn_if_fewer_files_than_instances(session, s3_prefix: str, instance_count: int) -> None:
    if instance_count <= 1:
        return
    bucket, prefix = split_s3_uri(s3_prefix)
    found = session.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix,
                                                 MaxKeys=instance_count).get("KeyCount", 0)
    if found < instance_count:
        import warnings

        warnings.warn(f"{s3_prefix} holds {found} object(s) for {instance_count} instances: "
                      "SageMaker gives each object to one instance, so some will idle. Split "
                      "the input into more files (tsc_toolkit.sagemaker.staging.upload_series).",
                      stacklevel=3)


class _CallableModule(type(os)):
    """``tsc_toolkit.sagemaker.deploy`` is both this module and its :func:`deploy` function.

    Python binds a submodule to its package once it is imported (``builtin_kmeans`` imports this
    one), so ``from tsc_toolkit.sagemaker import deploy`` gives the module or the function
    depending on what ran before. Calling the module calls :func:`deploy`, so both work.
    """

    def __call__(self, *args, **kwargs) -> Predictor:
        return deploy(*args, **kwargs)


import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _CallableModule
