"""SageMaker without AWS: moto's server on loopback, with training jobs that really run.

:func:`offline_aws` (a context manager) or :func:`start_offline_aws` starts moto's
``ThreadedMotoServer`` on ``127.0.0.1`` (a free port), points boto3 and the SageMaker SDK at
it (``AWS_ENDPOINT_URL``, dummy credentials, ``AWS_DEFAULT_REGION``,
``SAGEMAKER_VALIDATE_ROLE=false``, the SDK's telemetry opt-out), creates a bucket and returns
an :class:`OfflineAWS` with ``boto_session``, ``sagemaker_session``, ``bucket``,
``endpoint_url`` and ``role``. While it runs, ``boto3.Session()`` and ``boto3.client()``
without arguments use :attr:`OfflineAWS.boto_session`, so code that makes its own clients
gets the same hooks.

How jobs run. moto records a training job and calls it ``Completed`` at once, without
running anything. Here an ``after-call`` hook on ``CreateTrainingJob`` hands every created job
to :func:`tsc_toolkit.sagemaker.local.runner.start_training_job`, which runs it in a
background thread (``run_jobs="background"``, the default), before the create call returns
(``run_jobs="sync"``), or not at all (``run_jobs=False``; run them with
:meth:`OfflineAWS.run_job`). Whoever creates the job (this toolkit's ``fit``, a
``ModelTrainer``, plain boto3) gets the same behaviour. Then:

* ``DescribeTrainingJob`` answers with the local run's status (``InProgress`` while it
  runs, then ``Completed``, ``Failed`` with ``FailureReason``, or ``Stopped``), times, billable
  seconds, the ``MetricDefinitions`` of the create request (moto replaces them) and
  ``FinalMetricDataList`` from the job's output (the last value of each metric);
* ``StopTrainingJob`` (which moto lacks) stops the local run;
* ``iam:SimulatePrincipalPolicy`` (which moto lacks, and ``ModelTrainer`` calls) allows all;
* the job's output goes to CloudWatch Logs (moto's), group ``/aws/sagemaker/TrainingJobs``,
  as on AWS;
* ``model.tar.gz`` is put at the job's ``ModelArtifacts.S3ModelArtifacts``.

moto's empty ``VpcConfig`` and ``DataCaptureConfig`` in ``DescribeModel``,
``DescribeEndpointConfig`` and ``DescribeEndpoint`` answers (which the SDK v3 rejects) are
removed, and a missing ``OutputDataConfig.KmsKeyId`` is filled with ``""``.

Adding emulation (serving). Register botocore handlers on :attr:`OfflineAWS.events` (the
``boto_session``'s event system) with :meth:`OfflineAWS.register`; they apply to every client
the session makes afterwards, and :meth:`OfflineAWS.register` also adds them to the clients
already made (those of ``sagemaker_session``). A ``before-call`` handler (it receives the
serialized request as ``params``; its ``params["body"]`` holds the JSON) that returns
``(botocore.awsrequest.AWSResponse(url, 200, {}, None), parsed_dict)`` answers the call
instead of moto, e.g. ``before-call.sagemaker-runtime.InvokeEndpoint``. Starting installs
the serving emulation of :mod:`.serving` (endpoints and transform jobs) and announces the
sessions in :mod:`tsc_toolkit.sagemaker.shared.sessions`, where the client finds them.
Functions added with :func:`register_extension` run on every :class:`OfflineAWS` when it
starts (after its own hooks).

Examples
--------
>>> from tsc_toolkit.sagemaker import offline_aws
>>> with offline_aws() as aws:  # doctest: +SKIP
...     s3 = aws.boto_session.client("s3")
...     s3.put_object(Bucket=aws.bucket, Key="x.csv", Body=b"1,2,3\\n")
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..shared import sessions
from . import serving

__all__ = ["OfflineAWS", "offline_aws", "start_offline_aws", "register_extension",
           "DEFAULT_REGION", "DEFAULT_BUCKET", "DEFAULT_ROLE"]

DEFAULT_REGION = "us-east-1"
DEFAULT_BUCKET = "tsc-toolkit-offline"
DEFAULT_ROLE = "arn:aws:iam::123456789012:role/tsc-toolkit-offline"

_TELEMETRY_OPT_OUT = """SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""

_EXTENSIONS: list[Callable[[OfflineAWS], None]] = []


def register_extension(fn: Callable[[OfflineAWS], None]) -> Callable[[OfflineAWS], None]:
    """Run ``fn(aws)`` on every :class:`OfflineAWS` as it starts (and on running ones).

    Use it to add emulation, e.g. answering ``InvokeEndpoint`` with a real handler. Returns
    ``fn``, so it works as a decorator.
    """
    if fn not in _EXTENSIONS:
        _EXTENSIONS.append(fn)
        for aws in list(OfflineAWS._running):
            fn(aws)
    return fn


class OfflineAWS:
    """A running moto server and the sessions pointed at it (see the module docs).

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:<port>``.
    region : str
    bucket : str
        An existing bucket, also the SageMaker session's default bucket.
    role : str
        A dummy execution role ARN (moto does not check roles).
    boto_session : boto3.Session
    sagemaker_session : sagemaker.core.helper.session_helper.Session or None
        The SDK v3 session with ``default_bucket=bucket``; ``None`` without the SDK.
    created_jobs : dict
        Job name -> the CreateTrainingJob request parameters as sent (for assertions).
    """

    _running: list[OfflineAWS] = []

    def __init__(self, *, region: str = DEFAULT_REGION, bucket: str = DEFAULT_BUCKET,
                 run_jobs: str | bool = "background", workdir: str | os.PathLike | None = None,
                 processes_per_host: int | None = None):
        if run_jobs not in ("background", "sync", False, None):
            raise ValueError("run_jobs must be 'background', 'sync' or False.")
        self.region = region
        self.bucket = bucket
        self.role = DEFAULT_ROLE
        self.run_jobs = run_jobs or False
        self.processes_per_host = processes_per_host
        self.created_jobs: dict[str, dict[str, Any]] = {}
        self._workdir = workdir
        self._server = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_default_session = None
        self._saved_log_level = 0
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._lock = threading.Lock()
        self.endpoint_url = ""
        self.boto_session = None
        self.sagemaker_session = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> OfflineAWS:
        """Start the server, set the environment, make the sessions and the bucket."""
        try:
            import boto3
            from moto.server import ThreadedMotoServer
        except ImportError as err:  # pragma: no cover
            raise ImportError("Offline SageMaker needs boto3 and moto[server]: "
                              "pip install 'tsc_toolkit[dev]'") from err
        self._tmp = tempfile.TemporaryDirectory(prefix="tsc-offline-aws-")
        tmp = Path(self._tmp.name)
        config = tmp / "sagemaker-config.yaml"
        config.write_text(_TELEMETRY_OPT_OUT)
        import logging

        werkzeug = logging.getLogger("werkzeug")
        self._saved_log_level = werkzeug.level
        werkzeug.setLevel(logging.ERROR)  # no line per request in notebooks and test output
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._set_env({
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": None,
            "AWS_SECURITY_TOKEN": None,
            "AWS_PROFILE": None,
            "AWS_DEFAULT_PROFILE": None,
            "AWS_CONFIG_FILE": str(tmp / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "aws-credentials"),
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "SAGEMAKER_VALIDATE_ROLE": "false",
            "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
            "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(config),
            "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
            "TSC_TOOLKIT_OFFLINE_AWS": self.endpoint_url,
        })
        self.boto_session = boto3.Session(region_name=self.region)
        self._install_hooks()
        self._saved_default_session = boto3.DEFAULT_SESSION
        boto3.DEFAULT_SESSION = self.boto_session
        self.boto_session.client("s3").create_bucket(Bucket=self.bucket)
        self.sagemaker_session = self._make_sagemaker_session()
        OfflineAWS._running.append(self)
        sessions.push(self)
        serving.extend_offline_aws(self)  # endpoints and transform jobs
        for fn in list(_EXTENSIONS):
            fn(self)
        return self

    def stop(self) -> None:
        """Stop the server and any local job still running; restore the environment."""
        from . import runner as local_runner

        for name in list(self.created_jobs):
            run = local_runner.get_run(name)
            if run is not None and not run.done:
                run.stop()
                with contextlib.suppress(TimeoutError):
                    run.wait(30)
        if self in OfflineAWS._running:
            OfflineAWS._running.remove(self)
        sessions.remove(self)
        try:
            import boto3

            if boto3.DEFAULT_SESSION is self.boto_session:
                boto3.DEFAULT_SESSION = self._saved_default_session
        except ImportError:  # pragma: no cover
            pass
        if self._server is not None:
            import logging

            self._server.stop()
            self._server = None
            logging.getLogger("werkzeug").setLevel(self._saved_log_level)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> OfflineAWS:
        return self.start() if self._server is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def _make_sagemaker_session(self):
        try:
            from sagemaker.core.helper.session_helper import Session
        except ImportError:
            return None
        return Session(boto_session=self.boto_session, default_bucket=self.bucket)

    # ------------------------------------------------------------------ hooks

    @property
    def events(self):
        """The botocore event system of :attr:`boto_session` (register handlers here)."""
        return self.boto_session.events

    def register(self, event_name: str, handler: Callable, unique_id: str | None = None) -> None:
        """Register a botocore handler on the session and on the SDK session's clients.

        ``unique_id`` keeps a handler from being registered twice.
        """
        kwargs = {"unique_id": unique_id} if unique_id else {}
        self.boto_session.events.register(event_name, handler, **kwargs)
        sess = self.sagemaker_session
        if sess is not None:
            for attr in ("sagemaker_client", "sagemaker_runtime_client", "s3_client",
                         "sagemaker_metrics_client"):
                client = getattr(sess, attr, None)
                if client is not None and client.meta.events is not self.boto_session.events:
                    client.meta.events.register(event_name, handler, **kwargs)

    def _install_hooks(self) -> None:
        ev = self.boto_session.events
        ev.register("before-parameter-build.sagemaker.CreateTrainingJob", self._record_create,
                    unique_id="tsc-offline-record-create")
        ev.register("after-call.sagemaker.CreateTrainingJob", self._on_created,
                    unique_id="tsc-offline-run-created")
        ev.register("after-call.sagemaker.DescribeTrainingJob", self._patch_training_job,
                    unique_id="tsc-offline-describe-training")
        ev.register("before-call.sagemaker.StopTrainingJob", self._stop_training_job,
                    unique_id="tsc-offline-stop-training")
        ev.register("before-call.iam.SimulatePrincipalPolicy", self._simulate_policy,
                    unique_id="tsc-offline-simulate-policy")
        for op in ("DescribeModel", "DescribeEndpointConfig", "DescribeEndpoint",
                   "DescribeTransformJob"):
            ev.register(f"after-call.sagemaker.{op}", _strip_empty_configs,
                        unique_id=f"tsc-offline-strip-{op}")

    def _record_create(self, params, **kwargs) -> None:
        import copy

        name = params.get("TrainingJobName")
        if name:
            with self._lock:
                self.created_jobs[name] = copy.deepcopy(params)

    def _on_created(self, http_response=None, parsed=None, **kwargs) -> None:
        if not self.run_jobs or http_response is None or http_response.status_code >= 300:
            return
        name = (parsed or {}).get("TrainingJobArn", "").rsplit("/", 1)[-1]
        if name:
            self.run_job(name, wait=self.run_jobs == "sync")

    def run_job(self, job_name: str, *, wait: bool = True, processes_per_host: int | None = None):
        """Run a created training job with the local runner; returns its ``LocalRun``."""
        from . import runner as local_runner

        workdir = None
        if self._workdir is not None:
            workdir = Path(self._workdir) / job_name
        run = local_runner.start_training_job(
            job_name, boto_session=self.boto_session, workdir=workdir,
            processes_per_host=processes_per_host or self.processes_per_host)
        return run.wait() if wait else run

    def _patch_training_job(self, parsed=None, **kwargs) -> None:
        from . import runner as local_runner

        if not parsed or "TrainingJobName" not in parsed:
            return
        name = parsed["TrainingJobName"]
        out = parsed.get("OutputDataConfig")
        if isinstance(out, dict):
            out.setdefault("KmsKeyId", "")
        sent = self.created_jobs.get(name)
        if sent is not None:
            parsed.pop("FinalMetricDataList", None)  # moto's made-up train:progress
            spec = parsed.setdefault("AlgorithmSpecification", {})
            defs = (sent.get("AlgorithmSpecification") or {}).get("MetricDefinitions")
            if defs is not None:
                spec["MetricDefinitions"] = defs
            else:
                spec.pop("MetricDefinitions", None)
        run = local_runner.get_run(name)
        if run is not None:
            parsed.update(run.describe_patch())
            parsed.pop("FinalMetricDataList", None)  # moto's made-up train:progress
            if run.status == "Completed":
                defs = (sent or {}).get("AlgorithmSpecification", {}).get("MetricDefinitions")
                metrics = run.final_metrics(defs)
                if metrics:
                    parsed["FinalMetricDataList"] = metrics
            if run.status != "Failed":
                parsed.pop("FailureReason", None)
        elif sent is not None and self.run_jobs:
            # created here but not started yet (the create hook runs right after the call)
            parsed["TrainingJobStatus"] = "InProgress"
            parsed["SecondaryStatus"] = "Starting"

    def _simulate_policy(self, **kwargs):
        # moto lacks it; the SDK asks it whether the role may write to the default bucket
        from botocore.awsrequest import AWSResponse

        return AWSResponse(self.endpoint_url, 200, {}, None), {
            "EvaluationResults": [{"EvalActionName": "*", "EvalResourceName": "*",
                                   "EvalDecision": "allowed"}], "IsTruncated": False}

    def _stop_training_job(self, params=None, **kwargs):
        from botocore.awsrequest import AWSResponse

        from . import runner as local_runner

        name = _request_body(params).get("TrainingJobName")
        run = local_runner.get_run(name) if name else None
        if run is not None and not run.done:
            run.stop()
        return AWSResponse(self.endpoint_url, 200, {}, None), {}


def _request_body(request_dict) -> dict:
    """The JSON body of a serialized request (what ``before-call`` handlers receive)."""
    import json

    body = (request_dict or {}).get("body") or b"{}"
    if isinstance(body, dict):
        return body
    try:
        return json.loads(body)
    except ValueError:
        return {}


def _strip_empty_configs(parsed=None, **kwargs) -> None:
    if not isinstance(parsed, dict):
        return
    for key in ("VpcConfig", "DataCaptureConfig"):
        if key in parsed and not parsed[key]:
            del parsed[key]


def start_offline_aws(**kwargs) -> OfflineAWS:
    """Start an :class:`OfflineAWS` and return it; call ``.stop()`` when done.

    Keyword arguments go to :class:`OfflineAWS` (``region``, ``bucket``, ``run_jobs``,
    ``workdir``, ``processes_per_host``).
    """
    return OfflineAWS(**kwargs).start()


@contextlib.contextmanager
def offline_aws(**kwargs) -> Iterator[OfflineAWS]:
    """Context manager form of :func:`start_offline_aws`: stops everything on exit."""
    aws = start_offline_aws(**kwargs)
    try:
        yield aws
    finally:
        aws.stop()
