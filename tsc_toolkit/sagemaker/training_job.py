"""Train CNN-KMeans on SageMaker from a notebook: :func:`fit`, :func:`attach`, :class:`SageMakerJob`.

:func:`fit` takes local data (array, DataFrame, CSV file or folder) or an S3 URI, uploads what
is local as fg-style CSV, packages this toolkit's source, picks the PyTorch training image
for the instance type, and starts a training job with the SageMaker Python SDK v3
(``ModelTrainer``, ``SourceCode``, ``Compute``, ``InputData``, ``CheckpointConfig``,
``Torchrun``). The job runs ``python -m tsc_toolkit.sagemaker.train`` (through an entry script
in the packaged source). It returns a :class:`SageMakerJob` handle: ``status``,
``elapsed_seconds``, ``billable_seconds``, ``failure_reason``, ``metrics()``,
``logs(tail=50)``, ``wait()``, ``stop()``, ``model()``, ``model_data``.

Offline: inside :func:`tsc_toolkit.sagemaker.offline_aws` (or with ``session=`` an
``OfflineAWS``), the same call creates the job in moto and the local runner runs it on this
machine, so a notebook can try a job before paying for an instance.

Examples
--------
>>> from tsc_toolkit.sagemaker.training_job import gpus_per_instance
>>> gpus_per_instance("ml.g5.xlarge"), gpus_per_instance("ml.g5.12xlarge"), gpus_per_instance("ml.m5.xlarge")
(1, 4, 0)
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tarfile
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..io.archives import extract_tar
from .shared import sessions
from .shared.aws import TRAINING_LOG_GROUP, split_s3_uri

__all__ = ["fit", "attach", "SageMakerJob", "TrainingJobFailed", "gpus_per_instance",
           "training_image", "PYTORCH_VERSION", "PY_VERSION", "ENTRY_SCRIPT"]

#: PyTorch training container version and its Python (``image_uris.retrieve`` arguments).
PYTORCH_VERSION = "2.8.0"
PY_VERSION = "py312"
#: Name of the entry script written next to the packaged ``tsc_toolkit`` source.
ENTRY_SCRIPT = "tsc_train.py"
# pyarrow: a training channel may hold Parquet or Arrow files (sagemaker.container.train.read_channel)
_REQUIREMENTS = "scikit-learn>=1.5\nsafetensors>=0.4\npyarrow>=14\n"
_ENTRY_TEXT = ("import sys\n\nfrom tsc_toolkit.sagemaker.train import main\n\n"
               "if __name__ == \"__main__\":\n    sys.exit(main())\n")
_TERMINAL = ("Completed", "Failed", "Stopped")
_KEY_PREFIX = "tsc-toolkit"

# GPUs per instance for the families people train on; others count as CPU-only or 1 GPU.
_MULTI_GPU = {
    "g4dn.12xlarge": 4, "g4dn.metal": 8, "g5.12xlarge": 4, "g5.24xlarge": 4,
    "g5.48xlarge": 8, "g6.12xlarge": 4, "g6.24xlarge": 4, "g6.48xlarge": 8,
    "g6e.12xlarge": 4, "g6e.24xlarge": 4, "g6e.48xlarge": 8, "p3.8xlarge": 4,
    "p3.16xlarge": 8, "p3dn.24xlarge": 8, "p4d.24xlarge": 8, "p4de.24xlarge": 8,
    "p5.48xlarge": 8, "p5e.48xlarge": 8, "p5en.48xlarge": 8, "p6-b200.48xlarge": 8,
}
_GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en",
                 "p6-b200", "g4ad", "g5g")


class TrainingJobFailed(RuntimeError):
    """A training job ended as Failed or Stopped; the message holds its failure reason."""


def gpus_per_instance(instance_type: str) -> int:
    """GPUs of a SageMaker instance type (0 for CPU instances)."""
    name = instance_type.removeprefix("ml.")
    if name in _MULTI_GPU:
        return _MULTI_GPU[name]
    return 1 if name.split(".", 1)[0] in _GPU_FAMILIES else 0


def training_image(instance_type: str, region: str, *, version: str = PYTORCH_VERSION,
                   py_version: str = PY_VERSION) -> str:
    """The SageMaker PyTorch training image URI for ``instance_type`` (CPU or GPU build)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve("pytorch", region=region, version=version,
                               py_version=py_version, instance_type=instance_type,
                               image_scope="training")


# ---------------------------------------------------------------------- sessions

def _resolve_session(session):
    """(sagemaker v3 Session, boto3 Session, offline bundle or None) from what the user gave.

    The offline bundle is a running ``offline_aws()`` (found through
    :mod:`.shared.sessions`, so that this module never imports the emulation).
    """
    offline = None
    if session is None:
        session = sessions.current()
    if session is not None and sessions.is_bundle(session):
        offline = session
        session = offline.sagemaker_session
    if session is not None and hasattr(session, "client") and not hasattr(
            session, "boto_session"):
        boto = session  # a boto3.Session
        return None, boto, offline
    if session is None:
        session = _sdk_session()
    return session, session.boto_session, offline


def _sdk_session(boto_session=None):
    try:
        from sagemaker.core.helper.session_helper import Session
    except ImportError as err:
        raise ImportError("Launching SageMaker jobs needs the SageMaker Python SDK v3: "
                          "pip install 'tsc_toolkit[sagemaker]'") from err
    return Session(boto_session=boto_session) if boto_session is not None else Session()


# ---------------------------------------------------------------------- the handle

class SageMakerJob:
    """A handle on a SageMaker training job of this toolkit (or any job).

    Build it with :func:`fit` or :func:`attach`. Every property reads the job's current
    state from SageMaker (``DescribeTrainingJob``).

    Parameters
    ----------
    name : str
        The training job name.
    boto_session : boto3.Session
    trainer : ModelTrainer, optional
        The SDK object that created the job, when known.
    """

    def __init__(self, name: str, boto_session, trainer=None):
        self.name = name
        self.boto_session = boto_session
        self.trainer = trainer
        self._sm = boto_session.client("sagemaker")
        self._model_cache: dict[str, Any] = {}
        self._last: tuple[float, dict] | None = None

    # -------------------------------------------------------------- state

    #: Seconds a ``DescribeTrainingJob`` answer is reused by the properties, so a monitor
    #: reading several of them per refresh makes one call.
    cache_seconds = 1.0

    def describe(self, *, max_age: float = 0.0) -> dict:
        """The raw ``DescribeTrainingJob`` answer (one at most ``max_age`` seconds old)."""
        now = time.monotonic()
        if self._last is not None and max_age > 0 and now - self._last[0] <= max_age:
            return self._last[1]
        desc = self._sm.describe_training_job(TrainingJobName=self.name)
        self._last = (now, desc)
        return desc

    def _state(self) -> dict:
        return self.describe(max_age=self.cache_seconds)

    @property
    def status(self) -> str:
        """``InProgress``, ``Completed``, ``Failed``, ``Stopping`` or ``Stopped``."""
        return self._state()["TrainingJobStatus"]

    @property
    def secondary_status(self) -> str:
        """SageMaker's finer status (``Starting``, ``Downloading``, ``Training``, ...)."""
        return self._state().get("SecondaryStatus", "")

    @property
    def failure_reason(self) -> str | None:
        """Why the job failed (the entry point's message), or ``None``."""
        return self._state().get("FailureReason")

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the job started training (to its end once it has ended)."""
        desc = self._state()
        start = desc.get("TrainingStartTime")
        if start is None:
            return 0.0
        end = desc.get("TrainingEndTime") or datetime.now(timezone.utc)
        return max(0.0, (end - start).total_seconds())

    @property
    def billable_seconds(self) -> int | None:
        """Billable seconds (known once the job has ended; spot savings included)."""
        return self._state().get("BillableTimeInSeconds")

    @property
    def model_data(self) -> str | None:
        """S3 URI of the job's ``model.tar.gz``."""
        return (self._state().get("ModelArtifacts") or {}).get("S3ModelArtifacts")

    @property
    def hyperparameters(self) -> dict:
        """The job's hyperparameters, as strings."""
        return dict(self._state().get("HyperParameters") or {})

    def __repr__(self) -> str:
        try:
            status = self.status
        except Exception:  # noqa: BLE001 - repr must not fail
            status = "?"
        return f"SageMakerJob({self.name!r}, status={status!r})"

    # -------------------------------------------------------------- logs and metrics

    def log_events(self) -> list[dict]:
        """CloudWatch log events of the job (all hosts), oldest first."""
        logs = self.boto_session.client("logs")
        try:
            streams = []
            kwargs = {"logGroupName": TRAINING_LOG_GROUP, "logStreamNamePrefix": f"{self.name}/"}
            while True:
                page = logs.describe_log_streams(**kwargs)
                streams += [s["logStreamName"] for s in page.get("logStreams", [])]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except logs.exceptions.ResourceNotFoundException:
            return []
        events = []
        for stream in sorted(streams):
            token = None
            while True:
                kwargs = {"logGroupName": TRAINING_LOG_GROUP, "logStreamName": stream,
                          "startFromHead": True}
                if token:
                    kwargs["nextToken"] = token
                page = logs.get_log_events(**kwargs)
                events += page.get("events", [])
                new = page.get("nextForwardToken")
                if not page.get("events") or new == token:
                    break
                token = new
        events.sort(key=lambda e: e.get("timestamp", 0))
        return events

    def logs(self, tail: int | None = 50) -> str:
        """The job's output (CloudWatch Logs), the last ``tail`` lines (all if ``None``)."""
        lines = [e["message"] for e in self.log_events()]
        return "\n".join(lines if tail is None else lines[-tail:])

    def metrics(self):
        """One row per metric line of the logs: ``timestamp`` plus a column per metric.

        The job's own metric definitions (regexes) are applied to its log lines, as
        SageMaker does; for this toolkit's jobs the columns are ``epoch``, ``train_loss``,
        ``train_score``, ``valid_loss`` and ``valid_score``. With no log lines yet, the
        final metrics SageMaker reported (if any) make a single row; with neither, the frame
        has the columns and no row.
        """
        import pandas as pd

        from ..hyperparameters import METRIC_DEFINITIONS

        desc = self.describe()
        defs = (desc.get("AlgorithmSpecification") or {}).get("MetricDefinitions") \
            or METRIC_DEFINITIONS
        patterns = [(d["Name"], re.compile(d["Regex"])) for d in defs]
        rows = []
        for event in self.log_events():
            row = {}
            for name, pattern in patterns:
                m = pattern.search(event["message"])
                if m:
                    try:
                        row[name] = float(m.group(1))
                    except (ValueError, IndexError):
                        continue
            if row:
                ts = event.get("timestamp")
                row["timestamp"] = pd.Timestamp(ts, unit="ms", tz="UTC") if ts else pd.NaT
                rows.append(row)
        if not rows and desc.get("FinalMetricDataList"):
            rows = [{m["MetricName"]: m["Value"] for m in desc["FinalMetricDataList"]}]
        if not rows:  # nothing yet: typed, empty columns (one per metric definition)
            frame = pd.DataFrame({name: pd.Series(dtype="float64") for name, _ in patterns})
            frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
        else:
            frame = pd.DataFrame(rows)
        if "epoch" in frame:
            frame["epoch"] = frame["epoch"].astype("Int64")
            first = ["epoch"] + [c for c in ("train_loss", "train_score", "valid_loss",
                                             "valid_score") if c in frame]
            frame = frame[first + [c for c in frame.columns if c not in first]]
        return frame

    # -------------------------------------------------------------- control

    def wait(self, *, poll: float = 5.0, timeout: float | None = None,
             raise_on_failure: bool = True) -> SageMakerJob:
        """Block until the job ends; returns ``self``.

        Raises :class:`TrainingJobFailed` (with the failure reason) when it failed or was
        stopped and ``raise_on_failure``; :class:`TimeoutError` after ``timeout`` seconds.
        """
        start = time.monotonic()
        while True:
            desc = self.describe()
            if desc["TrainingJobStatus"] in _TERMINAL:
                break
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError(f"Training job {self.name} still "
                                   f"{desc['TrainingJobStatus']} after {timeout} s.")
            time.sleep(poll)
        if raise_on_failure and desc["TrainingJobStatus"] != "Completed":
            reason = desc.get("FailureReason") or desc["TrainingJobStatus"]
            raise TrainingJobFailed(f"Training job {self.name} "
                                    f"{desc['TrainingJobStatus'].lower()}: {reason}")
        return self

    def stop(self) -> None:
        """Ask SageMaker to stop the job (it ends as ``Stopped``; checkpoints are kept)."""
        self._sm.stop_training_job(TrainingJobName=self.name)
        self._last = None

    def download_model(self, path: str | os.PathLike | None = None) -> Path:
        """Download and unpack ``model.tar.gz`` into ``path`` (default: a temporary folder)."""
        uri = (self.describe().get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if not uri:
            raise RuntimeError(f"Training job {self.name} has no model artifact.")
        target = Path(path) if path is not None else Path(
            tempfile.mkdtemp(prefix=f"{self.name}-model-"))
        target.mkdir(parents=True, exist_ok=True)
        bucket, key = split_s3_uri(uri)
        body = self.boto_session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            extract_tar(tar, target)
        return target

    def model(self, path: str | os.PathLike | None = None, *, device: str | None = "auto"):
        """The trained :class:`~tsc_toolkit.CNNKMeans` (waits for the job if it still runs).

        ``device`` is where the model runs here (default ``"auto"``: this machine's GPU if it
        has one, else the CPU); ``None`` keeps the job's setting.
        """
        from ..cnn_kmeans import CNNKMeans

        self.wait()  # returns at once when completed; raises with the reason if it failed
        key = str(path)
        if key not in self._model_cache:
            self._model_cache[key] = self.download_model(path)
        return CNNKMeans.load(self._model_cache[key], device=device)


def attach(job_name: str, session=None) -> SageMakerJob:
    """A :class:`SageMakerJob` for a job started earlier (by anyone, by any means).

    ``session`` as in :func:`fit`. Raises botocore's ``ClientError`` if the job does not
    exist.
    """
    _, boto, _ = _resolve_session(session)
    job = SageMakerJob(job_name, boto)
    job.describe()
    return job


# ---------------------------------------------------------------------- launching

def _package_source(target: Path) -> Path:
    """Copy the ``tsc_toolkit`` source (from a checkout or an installed copy) plus the entry
    script into ``target``."""
    from ..resources import source_files

    for src, name in source_files():
        dest = target / "tsc_toolkit" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
    (target / ENTRY_SCRIPT).write_text(_ENTRY_TEXT)
    (target / "requirements.txt").write_text(_REQUIREMENTS)
    return target


def _is_s3(obj) -> bool:
    return isinstance(obj, str) and obj.startswith("s3://")


def _upload_channel(data, boto, bucket: str, prefix: str, name: str) -> tuple[str, int | None]:
    """S3 prefix of a channel, uploading local data; also the channel count if known."""
    if _is_s3(data):
        return data, None
    s3 = boto.client("s3")
    key_prefix = f"{prefix}/{name}"
    if isinstance(data, (str, os.PathLike)) and Path(data).exists():
        path = Path(data)
        files = [path] if path.is_file() else sorted(
            p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"No file in {path}.")
        for f in files:
            rel = f.name if path.is_file() else f.relative_to(path).as_posix()
            s3.upload_file(str(f), bucket, f"{key_prefix}/{rel}")
        return f"s3://{bucket}/{key_prefix}", None
    if isinstance(data, (str, os.PathLike)):
        raise FileNotFoundError(f"No file or folder at {data!r} (S3 data must start with s3://).")
    from ..data import as_dataset
    from ..io.csvio import write_csv

    X = as_dataset(data)
    buf = io.StringIO()
    write_csv(X, buf)
    s3.put_object(Bucket=bucket, Key=f"{key_prefix}/{name}.csv",
                  Body=buf.getvalue().encode("utf-8"))
    return f"s3://{bucket}/{key_prefix}", int(X.shape[1])


def _hyperparameters(hyperparameters, warm: bool) -> dict[str, str]:
    from ..hyperparameters import parse_hyperparameters, to_hyperparameters

    if hyperparameters is None:
        out: dict[str, str] = {}
    elif hasattr(hyperparameters, "get_params"):
        params = hyperparameters.get_params()
        out = to_hyperparameters(params)
        out["verbose"] = str(max(1, int(params.get("verbose") or 0)))
        if params.get("device") in ("auto", None):
            out.pop("device", None)
    else:
        kwargs = parse_hyperparameters(dict(hyperparameters))  # fail here, not in the job
        out = to_hyperparameters(kwargs)
        if "channels" in kwargs:
            out["channels"] = str(kwargs["channels"])
    if warm and hasattr(hyperparameters, "get_params"):
        from ..hyperparameters import ARCHITECTURE_PARAMS, HYPERPARAMETERS

        kebab = {v: k for k, v in HYPERPARAMETERS.items()}
        for p in ARCHITECTURE_PARAMS:
            out.pop(kebab[p], None)
    return out


def _model_uri(warm_start_from, boto) -> str:
    if _is_s3(warm_start_from):
        return warm_start_from
    if isinstance(warm_start_from, SageMakerJob):
        uri = warm_start_from.model_data
    else:
        desc = boto.client("sagemaker").describe_training_job(
            TrainingJobName=str(warm_start_from))
        uri = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if not uri:
        raise ValueError(f"Training job {warm_start_from} has no model to start from.")
    return uri


def fit(X, *, role: str | None = None, instance_type: str = "ml.g5.xlarge",
        instance_count: int = 1, processes_per_host: int | str = "auto",
        hyperparameters=None, validation=None, spot: bool = False, max_run: int = 86400,
        max_wait: int | None = None, checkpoint_s3_uri: str | None = None,
        warm_start_from=None, tags: dict | list | None = None, wait: bool = False,
        session=None, job_name: str | None = None, **model_trainer_kwargs) -> SageMakerJob:
    """Start a CNN-KMeans training job on SageMaker; returns its :class:`SageMakerJob`.

    Parameters
    ----------
    X : array-like, DataFrame, path or str
        Training series: anything :func:`tsc_toolkit.as_dataset` accepts (uploaded as an
        fg-style CSV file), a local CSV file or folder of CSV files (uploaded as they are),
        or an ``s3://`` prefix (used as it is).
    role : str, optional
        IAM execution role ARN; default the notebook's role (``get_execution_role``).
    instance_type, instance_count : str, int
        ``ml.g5.xlarge`` (1 GPU) by default. More than one GPU in all trains with
        DistributedDataParallel under ``torchrun``.
    processes_per_host : int or "auto"
        Processes per instance for ``torchrun``; ``"auto"`` is one per GPU.
    hyperparameters : dict or CNNKMeans, optional
        fg-research's names (``{"clusters": 8, "kernel-size": 3}``), keyword names, or an
        unfitted :class:`~tsc_toolkit.CNNKMeans` whose parameters are sent. Checked here
        before anything is uploaded. ``channels`` (rows per series) is set for
        multivariate arrays.
    validation : like ``X``, optional
        Validation series (adds ``valid_loss`` and ``valid_score``).
    spot : bool
        Managed spot training (cheaper, may be interrupted; checkpoints make it resume).
    max_run, max_wait : int
        Seconds of training allowed; with spot, the wait for capacity plus training
        (default ``max_run``).
    checkpoint_s3_uri : str, optional
        Where checkpoints are kept; a new job with the same URI resumes from them. Default
        with ``spot``: one chosen by the SDK.
    warm_start_from : str or SageMakerJob, optional
        Continue training an earlier model: a job name, a handle, or a ``model.tar.gz`` URI
        (sent as the ``model`` channel).
    tags : dict or list, optional
        ``{"Key": "Value"}`` or ``[{"Key": ..., "Value": ...}]``.
    wait : bool
        Block until the job ends (raises :class:`TrainingJobFailed` if it fails).
    session : sagemaker Session, boto3 Session or OfflineAWS, optional
        Default: the running :func:`~tsc_toolkit.sagemaker.offline_aws` if any,
        else a new SDK session.
    job_name : str, optional
        Base of the job name (SageMaker adds a timestamp); default ``tsc-cnn-kmeans``.
    **model_trainer_kwargs
        Passed to ``ModelTrainer`` (e.g. ``training_image``, ``environment``,
        ``networking``, ``output_data_config``), overriding what this function sets.
    """
    try:
        from sagemaker.core.shapes import MetricDefinition, StoppingCondition, Tag
        from sagemaker.core.training.configs import (
            CheckpointConfig,
            Compute,
            InputData,
            SourceCode,
        )
        from sagemaker.train import ModelTrainer
        from sagemaker.train.distributed import Torchrun
    except ImportError as err:
        raise ImportError("Launching SageMaker jobs needs the SageMaker Python SDK v3: "
                          "pip install 'tsc_toolkit[sagemaker]'") from err

    from ..hyperparameters import METRIC_DEFINITIONS

    sm_session, boto, offline = _resolve_session(session)
    if sm_session is None:
        sm_session = _sdk_session(boto)
    if role is None:
        if offline is not None:
            role = offline.role
        else:
            from sagemaker.core.helper.session_helper import get_execution_role

            role = get_execution_role(sm_session)
    base = job_name or "tsc-cnn-kmeans"
    hps = _hyperparameters(hyperparameters, warm_start_from is not None)
    bucket = sm_session.default_bucket()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    prefix = f"{_KEY_PREFIX}/{base}-{stamp}"
    train_uri, channels = _upload_channel(X, boto, bucket, prefix, "training")
    if channels is not None and channels > 1:
        hps.setdefault("channels", str(channels))
    inputs = [InputData(channel_name="training", data_source=train_uri,
                        content_type="text/csv")]
    if validation is not None:
        valid_uri, _ = _upload_channel(validation, boto, bucket, prefix, "validation")
        inputs.append(InputData(channel_name="validation", data_source=valid_uri,
                                content_type="text/csv"))
    if warm_start_from is not None:
        inputs.append(InputData(channel_name="model",
                                data_source=_model_uri(warm_start_from, boto),
                                content_type="application/x-sagemaker-model"))

    processes = None if processes_per_host in ("auto", None) else int(processes_per_host)
    gpus = gpus_per_instance(instance_type)
    per_host = processes or max(gpus, 1)
    distributed = Torchrun(process_count_per_node=processes) \
        if instance_count * per_host > 1 else None

    code_dir = tempfile.mkdtemp(prefix="tsc-sagemaker-code-")
    try:
        _package_source(Path(code_dir))
        settings: dict[str, Any] = {
            "sagemaker_session": sm_session,
            "role": role,
            "base_job_name": base,
            "training_image": training_image(instance_type, boto.region_name),
            "source_code": SourceCode(source_dir=code_dir, entry_script=ENTRY_SCRIPT,
                                      requirements="requirements.txt"),
            "compute": Compute(instance_type=instance_type, instance_count=instance_count,
                               enable_managed_spot_training=spot or None),
            "stopping_condition": StoppingCondition(
                max_runtime_in_seconds=int(max_run),
                max_wait_time_in_seconds=int(max_wait or max_run) if spot else None),
            "hyperparameters": hps,
        }
        if distributed is not None:
            settings["distributed"] = distributed
        if spot or checkpoint_s3_uri:
            settings["checkpoint_config"] = CheckpointConfig(s3_uri=checkpoint_s3_uri,
                                                             local_path="/opt/ml/checkpoints")
        if tags:
            pairs = tags.items() if isinstance(tags, dict) else \
                [(t["Key"], t["Value"]) for t in tags]
            settings["tags"] = [Tag(key=str(k), value=str(v)) for k, v in pairs]
        settings.update(model_trainer_kwargs)
        trainer = ModelTrainer(**settings)
        trainer.with_metric_definitions([MetricDefinition(name=d["Name"], regex=d["Regex"])
                                         for d in METRIC_DEFINITIONS])
        trainer.train(input_data_config=inputs, wait=False, logs=False)
    finally:
        shutil.rmtree(code_dir, ignore_errors=True)
    name = trainer._latest_training_job.training_job_name
    job = SageMakerJob(name, boto, trainer=trainer)
    if wait:
        job.wait(poll=2.0 if offline is not None else 10.0)
    return job
