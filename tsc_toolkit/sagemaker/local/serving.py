"""Offline emulation of SageMaker's containers, on top of an AWS API emulator such as moto.

moto records training jobs, models, endpoints and transform jobs, but runs nothing: training
jobs are "Completed" at once with no model, endpoints answer a canned body, and transform jobs
write no output. :class:`LocalSageMaker` adds what the containers would do, through botocore
event handlers on a ``boto3.Session`` (no SDK internals are patched):

- ``InvokeEndpoint`` (``before-call``): the endpoint is resolved to its endpoint config and
  model through the API, the model's ``ModelDataUrl`` is downloaded and opened, and the
  request is answered by the real handlers: the built-in K-Means image by
  :mod:`tsc_toolkit.sagemaker.container.kmeans`, any other image by the PyTorch inference
  contract (``code/<SAGEMAKER_PROGRAM>`` from the archive: ``model_fn``, ``input_fn``,
  ``predict_fn``, ``output_fn`` or ``transform_fn``). A bad request raises the runtime's
  ``ModelError`` with the container's status, as on AWS.
- ``CreateTransformJob`` (``after-call``): each input object goes to one of ``InstanceCount``
  instances (recorded per job, as SageMaker spreads the objects of a prefix), is split
  (``SplitType`` Line or RecordIO), sent in batches (``BatchStrategy``, ``MaxPayloadInMB``) to
  the same handlers, and
  the answers are assembled (``AssembleWith``) into ``<S3OutputPath>/<key relative to the
  input prefix>.out``; a failing object gets no ``.out`` and fails the job.
- ``CreateTrainingJob`` (``after-call``) for the built-in ``kmeans`` image: the channels are
  copied from S3 (``S3Prefix`` or ``ManifestFile``) into an ``/opt/ml`` layout under a work
  folder, :func:`tsc_toolkit.sagemaker.container.kmeans.train` runs, and ``model.tar.gz`` is put
  at the job's ``ModelArtifacts`` key. Other images are left to
  :mod:`tsc_toolkit.sagemaker.local.runner`.

``Describe{Training,Transform}Job`` answers are amended (``after-call``) with the status, the
failure reason and the final metrics of the jobs run here.

Handlers apply to clients created from the session *after* :meth:`LocalSageMaker.install`
(botocore copies a session's event handlers into each new client). Every
:class:`tsc_toolkit.sagemaker.local.offline.OfflineAWS` installs this emulation when it starts
(:func:`extend_offline_aws`), so ``offline_aws()`` serves endpoints and batch transforms too.

Examples
--------
>>> import boto3  # doctest: +SKIP
>>> from tsc_toolkit.sagemaker.local.serving import LocalSageMaker
>>> session = boto3.Session(region_name="us-east-1")  # doctest: +SKIP
>>> emulator = LocalSageMaker(session).install()  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import threading
import traceback
import urllib.parse
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...io.archives import extract_tar
from ..container import kmeans as kmeans_container
from ..container.inference import RequestError
from ..shared.aws import is_builtin_kmeans_image, split_s3_uri

__all__ = ["LocalSageMaker", "install", "extend_offline_aws", "quality_metrics"]

_TERMINAL = ("Completed", "Failed", "Stopped")


def quality_metrics(log: str) -> list[dict]:
    """``FinalMetricDataList`` entries (``train:msd``, ``test:ssd``, ...) from the built-in
    K-Means log's ``#quality_metric: host=algo-1, train msd <loss>=0.07`` lines (last wins)."""
    found: dict[str, float] = {}
    for m in re.finditer(r"#quality_metric: host=\S+, (\w+) (\w+) <loss>=(\S+)", log):
        found[f"{m.group(1)}:{m.group(2)}"] = float(m.group(3))
    now = datetime.now(timezone.utc)
    return [{"MetricName": k, "Value": v, "Timestamp": now} for k, v in found.items()]


@dataclass
class _JobRecord:
    status: str
    failure_reason: str = ""
    metrics: list[dict] = field(default_factory=list)
    logs: str = ""
    #: transform jobs: the input keys each instance (algo-1, algo-2, ...) was given
    instances: dict[str, list[str]] = field(default_factory=dict)


class LocalSageMaker:
    """Run built-in K-Means training jobs, endpoints and batch transforms locally.

    Parameters
    ----------
    boto_session : boto3.Session
        The session whose clients talk to the AWS emulator.
    workdir : str or path-like, optional
        Where models, channels and job folders go (a temporary folder by default).
    run_training : bool, default=True
        Also run built-in K-Means training jobs when they are created.
    """

    def __init__(self, boto_session, workdir: str | os.PathLike | None = None, *,
                 run_training: bool = True):
        self.boto_session = boto_session
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tsc-local-sagemaker-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.run_training = run_training
        self.training_jobs: dict[str, _JobRecord] = {}
        self.transform_jobs: dict[str, _JobRecord] = {}
        self._handlers: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._registered: list[tuple[str, Any]] = []

    # ------------------------------------------------------------------- install

    def install(self, register=None) -> LocalSageMaker:
        """Register the event handlers on the session; returns ``self``.

        ``register(event_name, handler, unique_id=...)`` replaces
        ``boto_session.events.register`` (e.g. :meth:`OfflineAWS.register
        <tsc_toolkit.sagemaker.local.offline.OfflineAWS.register>`, which also reaches clients
        already made).
        """
        register = register or self.boto_session.events.register
        hooks = [("before-call.sagemaker-runtime.InvokeEndpoint", self._on_invoke_endpoint),
                 ("after-call.sagemaker.CreateTransformJob", self._on_create_transform_job),
                 ("after-call.sagemaker.DescribeTransformJob", self._on_describe_transform_job),
                 ("after-call.sagemaker.DescribeTrainingJob", self._on_describe_training_job)]
        if self.run_training:
            hooks.append(("after-call.sagemaker.CreateTrainingJob",
                          self._on_create_training_job))
        for name, handler in hooks:
            register(name, handler, unique_id=f"tsc-local-{name}-{id(self)}")
            self._registered.append((name, handler))
        return self

    def uninstall(self) -> None:
        """Remove the event handlers and the temporary folder."""
        for name, _ in self._registered:
            self.boto_session.events.unregister(name, unique_id=f"tsc-local-{name}-{id(self)}")
        self._registered.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalSageMaker:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    # ------------------------------------------------------------------- clients

    def _client(self, service: str):
        return self.boto_session.client(service)

    def _download_tree(self, uri: str, dest: Path, data_type: str = "S3Prefix"
                       ) -> list[tuple[str, str]]:
        """Copy an S3 prefix (or the objects of a manifest) under ``dest``.

        Returns (key, path relative to the prefix) of each object, in key order.
        """
        s3 = self._client("s3")
        bucket, key = split_s3_uri(uri)
        if data_type == "ManifestFile":
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            pbucket, prefix = split_s3_uri(manifest[0]["prefix"])
            items = [(pbucket, prefix + rel, rel) for rel in manifest[1:]]
        else:
            items = []
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    k = obj["Key"]
                    if k.endswith("/"):
                        continue
                    rel = k[len(key):].lstrip("/") or k.rsplit("/", 1)[-1]
                    items.append((bucket, k, rel))
        dest.mkdir(parents=True, exist_ok=True)
        for b, k, rel in items:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(b, k, str(target))
        return [(k, rel) for _, k, rel in items]

    # ------------------------------------------------------------------ training

    def _on_create_training_job(self, http_response=None, parsed=None, **kwargs):
        if http_response is None or http_response.status_code >= 300 or not parsed:
            return
        name = parsed.get("TrainingJobArn", "").rsplit("/", 1)[-1]
        desc = self._client("sagemaker").describe_training_job(TrainingJobName=name)
        if is_builtin_kmeans_image(desc["AlgorithmSpecification"].get("TrainingImage", "")):
            try:
                self.run_training_job(name, description=desc)
            except Exception as err:  # the job fails, not the CreateTrainingJob call
                self.training_jobs[name] = _JobRecord(
                    "Failed", f"ClientError: {type(err).__name__}: {err}",
                    logs=traceback.format_exc())

    def run_training_job(self, name: str, *, description: dict | None = None) -> _JobRecord:
        """Run a built-in K-Means training job recorded by the emulator; upload its model."""
        sm = self._client("sagemaker")
        desc = description or sm.describe_training_job(TrainingJobName=name)
        base = self.workdir / "training" / name / "opt" / "ml"
        if base.exists():
            shutil.rmtree(base)
        config = base / "input" / "config"
        config.mkdir(parents=True)
        (config / "hyperparameters.json").write_text(json.dumps(desc.get("HyperParameters", {})))
        channels = {}
        for ch in desc.get("InputDataConfig", []):
            src = ch["DataSource"]["S3DataSource"]
            self._download_tree(src["S3Uri"], base / "input" / "data" / ch["ChannelName"],
                                src.get("S3DataType", "S3Prefix"))
            channels[ch["ChannelName"]] = {
                "ContentType": ch.get("ContentType", ""),
                "TrainingInputMode": desc["AlgorithmSpecification"].get("TrainingInputMode"),
                "S3DistributionType": src.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": ch.get("RecordWrapperType", "None")}
        (config / "inputdataconfig.json").write_text(json.dumps(channels))
        (config / "resourceconfig.json").write_text(json.dumps(
            {"current_host": "algo-1", "hosts": ["algo-1"]}))
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = kmeans_container.train(base)
        logs = out.getvalue() + err.getvalue()
        if rc == 0:
            artifact = desc["ModelArtifacts"]["S3ModelArtifacts"]
            tar_path = base / "output" / "model.tar.gz"
            tar_path.parent.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tar_path, "w:gz") as tar:
                for f in sorted((base / "model").iterdir()):
                    tar.add(f, arcname=f.name)
            bucket, key = split_s3_uri(artifact)
            self._client("s3").upload_file(str(tar_path), bucket, key)
            record = _JobRecord("Completed", metrics=quality_metrics(logs), logs=logs)
        else:
            failure = base / "output" / "failure"
            reason = failure.read_text() if failure.exists() else "AlgorithmError"
            record = _JobRecord("Failed", f"AlgorithmError: {reason}", logs=logs)
        self.training_jobs[name] = record
        return record

    def _on_describe_training_job(self, parsed=None, **kwargs):
        record = self.training_jobs.get((parsed or {}).get("TrainingJobName", ""))
        if record is None:
            self._runner_kmeans_metrics(parsed)
            return
        parsed["TrainingJobStatus"] = record.status
        parsed["SecondaryStatus"] = record.status
        if record.failure_reason:
            parsed["FailureReason"] = record.failure_reason
        else:
            parsed.pop("FailureReason", None)
        if record.metrics:
            parsed["FinalMetricDataList"] = record.metrics

    @staticmethod
    def _runner_kmeans_metrics(parsed) -> None:
        """The built-in algorithm's final metrics for a K-Means job run by the local runner
        (moto reports a placeholder; the container's log has the real values)."""
        if not parsed or parsed.get("TrainingJobStatus") != "Completed":
            return
        image = (parsed.get("AlgorithmSpecification") or {}).get("TrainingImage", "")
        if not is_builtin_kmeans_image(image):
            return
        from .runner import get_run

        run = get_run(parsed.get("TrainingJobName", ""))
        metrics = quality_metrics(run.log_text()) if run is not None else []
        if metrics:
            parsed["FinalMetricDataList"] = metrics

    # ------------------------------------------------------------------ models

    def model_handler(self, model_name: str):
        """``handler(body, content_type, accept) -> (body, content_type)`` for a model."""
        desc = self._client("sagemaker").describe_model(ModelName=model_name)
        container = desc.get("PrimaryContainer") or (desc.get("Containers") or [{}])[0]
        url, image = container.get("ModelDataUrl", ""), container.get("Image", "")
        env = container.get("Environment", {}) or {}
        bucket, key = split_s3_uri(url)
        etag = self._client("s3").head_object(Bucket=bucket, Key=key).get("ETag", "")
        cache_key = hashlib.sha256(json.dumps([url, etag, image, env], sort_keys=True).encode()
                                   ).hexdigest()[:16]
        with self._lock:
            if cache_key not in self._handlers:
                self._handlers[cache_key] = self._load_handler(cache_key, url, image, env)
            return self._handlers[cache_key]

    def _load_handler(self, cache_key: str, url: str, image: str, env: dict):
        folder = self.workdir / "models" / cache_key
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        bucket, key = split_s3_uri(url)
        archive = folder.parent / f"{cache_key}.tar.gz"
        self._client("s3").download_file(bucket, key, str(archive))
        with tarfile.open(archive) as tar:
            extract_tar(tar, folder)
        if is_builtin_kmeans_image(image):
            model = kmeans_container.model_fn(folder)
            return lambda body, ctype, accept: kmeans_container.invoke(model, body, ctype, accept)
        return _PyTorchContainer(folder, env)

    # ---------------------------------------------------------------- endpoints

    def _on_invoke_endpoint(self, params=None, model=None, **kwargs):
        from botocore.awsrequest import AWSResponse
        from botocore.response import StreamingBody

        match = re.match(r"/endpoints/([^/]+)/invocations", params.get("url_path", ""))
        if match is None:
            return None
        endpoint = urllib.parse.unquote(match.group(1))
        headers = {k.lower(): v for k, v in (params.get("headers") or {}).items()}
        body = params.get("body") or b""
        if hasattr(body, "read"):
            body = body.read()
        url = params.get("url", "")
        try:
            out, out_type = self.invoke_endpoint(endpoint, body, headers.get("content-type"),
                                                 headers.get("accept"))
        except LookupError as err:
            return (AWSResponse(url, 400, {}, None),
                    {"Error": {"Code": "ValidationError", "Message": str(err)},
                     "ResponseMetadata": {"HTTPStatusCode": 400}})
        except Exception as err:  # the container's status (500 unless the error carries one)
            status = getattr(err, "status_code", None)
            if isinstance(status, int) and 400 <= status < 600:
                return self._model_error(url, endpoint, status, getattr(err, "message", str(err)))
            return self._model_error(url, endpoint, 500, f"{type(err).__name__}: {err}")
        data = out.encode("utf-8") if isinstance(out, str) else bytes(out)
        return (AWSResponse(url, 200, {"content-type": out_type}, None),
                {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentType": out_type,
                 "InvokedProductionVariant": "AllTraffic",
                 "ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}})

    @staticmethod
    def _model_error(url, endpoint, status, message):
        from botocore.awsrequest import AWSResponse

        text = (f"Received {'client' if status < 500 else 'server'} error ({status}) from "
                f"primary with message \"{message}\". See the endpoint's logs.")
        return (AWSResponse(url, 424, {}, None),
                {"Error": {"Code": "ModelError", "Message": text},
                 "OriginalStatusCode": status, "OriginalMessage": message,
                 "ResponseMetadata": {"HTTPStatusCode": 424}})

    def invoke_endpoint(self, endpoint_name: str, body: bytes | str, content_type: str | None,
                        accept: str | None = None) -> tuple[str | bytes, str]:
        """Answer a request to ``endpoint_name`` with its model's handlers."""
        sm = self._client("sagemaker")
        try:
            ep = sm.describe_endpoint(EndpointName=endpoint_name)
            cfg = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
        except Exception as err:  # botocore ClientError, whatever the emulator says
            raise LookupError(f"Endpoint {endpoint_name!r} not found: {err}") from None
        variant = cfg["ProductionVariants"][0]
        return self.model_handler(variant["ModelName"])(body, content_type, accept)

    # --------------------------------------------------------------- transforms

    def _on_create_transform_job(self, http_response=None, parsed=None, **kwargs):
        if http_response is None or http_response.status_code >= 300 or not parsed:
            return
        self.run_transform_job(parsed.get("TransformJobArn", "").rsplit("/", 1)[-1])

    def _on_describe_transform_job(self, parsed=None, **kwargs):
        record = self.transform_jobs.get((parsed or {}).get("TransformJobName", ""))
        if record is None:
            return
        parsed["TransformJobStatus"] = record.status
        if record.failure_reason:
            parsed["FailureReason"] = record.failure_reason

    def run_transform_job(self, name: str) -> _JobRecord:
        """Run a transform job recorded by the emulator: write ``<key>.out`` for each input."""
        sm, s3 = self._client("sagemaker"), self._client("s3")
        desc = sm.describe_transform_job(TransformJobName=name)
        tin, tout = desc["TransformInput"], desc["TransformOutput"]
        src = tin["DataSource"]["S3DataSource"]
        split = tin.get("SplitType", "None") or "None"
        ctype = tin.get("ContentType")
        accept = tout.get("Accept")
        assemble = tout.get("AssembleWith", "None") or "None"
        multi = desc.get("BatchStrategy", "MultiRecord") != "SingleRecord"
        max_bytes = int(desc.get("MaxPayloadInMB", 6) or 6) * 1024 * 1024
        out_bucket, out_prefix = split_s3_uri(tout["S3OutputPath"])
        count = int(desc.get("TransformResources", {}).get("InstanceCount", 1) or 1)
        instances: dict[str, list[str]] = {f"algo-{i + 1}": [] for i in range(count)}
        failures = []
        try:
            handler = self.model_handler(desc["ModelName"])
            staging = self.workdir / "transform" / name
            objects = self._download_tree(src["S3Uri"], staging,
                                          src.get("S3DataType", "S3Prefix"))
            for index, (key, rel) in enumerate(objects):
                # SageMaker gives each S3 object to one instance; spread them evenly
                instances[f"algo-{index % count + 1}"].append(key)
                data = (staging / rel).read_bytes()
                try:
                    result = self._transform_object(handler, data, split, multi, max_bytes,
                                                    ctype, accept, assemble)
                except Exception as err:  # one bad object fails the job, not the others
                    msg = err.message if isinstance(err, RequestError) else str(err)
                    failures.append(f"{key}: {msg}")
                    continue
                out_key = f"{out_prefix.rstrip('/')}/{rel}.out".lstrip("/")
                s3.put_object(Bucket=out_bucket, Key=out_key, Body=result)
        except Exception as err:
            failures.append(f"{type(err).__name__}: {err}\n{traceback.format_exc()}")
        record = _JobRecord("Failed" if failures else "Completed",
                            ("ClientError: " + "; ".join(failures))[:1024] if failures else "",
                            instances=instances)
        self.transform_jobs[name] = record
        return record

    @staticmethod
    def _transform_object(handler, data, split, multi, max_bytes, ctype, accept, assemble):
        if split == "Line":
            records = [line + b"\n" for line in data.splitlines() if line.strip()]
        elif split == "RecordIO":
            from ..shared.recordio import _payloads, frame

            records = [frame(p) for p in _payloads(data)]
        else:
            records = [data]
        batches: list[bytes] = []
        if multi:
            current = b""
            for rec in records:
                if current and len(current) + len(rec) > max_bytes:
                    batches.append(current)
                    current = b""
                current += rec
            if current:
                batches.append(current)
        else:
            batches = records
        outputs = []
        for batch in batches:
            out, _ = handler(batch, ctype, accept)
            outputs.append(out.encode("utf-8") if isinstance(out, str) else bytes(out))
        if assemble == "Line":
            return b"".join(o if o.endswith(b"\n") else o + b"\n" for o in outputs if o)
        return b"".join(outputs)


class _PyTorchContainer:
    """The request path of SageMaker's PyTorch inference toolkit, for one model folder."""

    _TEXT_TYPES = ("application/json", "text/csv", "application/jsonlines",
                   "application/x-jsonlines", "text/plain")

    def __init__(self, folder: Path, env: dict):
        program = env.get("SAGEMAKER_PROGRAM", "inference.py")
        code_dir = folder / "code"
        path = code_dir / program
        if not path.is_file():
            raise FileNotFoundError(f"The model archive has no code/{program}.")
        self.default_accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT",
                                      "application/json")
        name = f"_tsc_local_inference_{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        # The container puts the code folder on sys.path before importing the program.
        sys.path.insert(0, str(code_dir))
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(code_dir))
        self.module = module
        self.model = module.model_fn(str(folder))

    def __call__(self, body, content_type, accept):
        m = self.module
        if not accept or accept.strip() == "*/*":
            accept = self.default_accept
        media = (content_type or "").split(";")[0].strip().lower()
        if media in self._TEXT_TYPES and isinstance(body, (bytes, bytearray)):
            try:
                body = bytes(body).decode("utf-8")
            except UnicodeDecodeError:
                raise RequestError("The request body is not UTF-8 text.") from None
        if hasattr(m, "transform_fn"):
            result = m.transform_fn(self.model, body, content_type, accept)
        else:
            data = m.input_fn(body, content_type)
            pred = m.predict_fn(data, self.model)
            result = m.output_fn(pred, accept)
        if isinstance(result, tuple):
            return result[0], result[1]
        return result, accept


def install(boto_session, workdir: str | os.PathLike | None = None, **kwargs) -> LocalSageMaker:
    """Create a :class:`LocalSageMaker` for ``boto_session`` and install its handlers."""
    return LocalSageMaker(boto_session, workdir, **kwargs).install()


def extend_offline_aws(aws) -> None:
    """Serve endpoints and transform jobs on every ``OfflineAWS`` (training jobs, the built-in
    K-Means included, are already run there by the local runner)."""
    if getattr(aws, "local_serving", None) is None:
        aws.local_serving = LocalSageMaker(aws.boto_session, run_training=False).install(
            register=aws.register)
