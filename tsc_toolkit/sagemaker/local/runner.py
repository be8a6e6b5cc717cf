"""Run a SageMaker training job on this machine, without Docker.

SageMaker's own local mode needs a Docker daemon, which Studio and many laptops lack. This
runner executes the job definition the way the training container would, with the Python
that runs it:

1. reads the job (``DescribeTrainingJob``, or a definition dict of the same shape);
2. lays out ``/opt/ml`` under a work folder: ``input/config/*.json``, one folder per channel
   under ``input/data`` (copied from S3, a ``file://`` URI or a local path; ``S3Prefix`` and
   ``ManifestFile`` sources), ``model``, ``output``, and the checkpoint folder, restored from
   ``CheckpointConfig.S3Uri``;
3. picks what to run:

   * the SageMaker SDK v3 ``ModelTrainer`` layout (``code`` and ``sm_drivers`` channels): the
     entry script or command of ``sm_drivers/sourcecode.json``, with the hyperparameters as
     ``--name value``; through ``torchrun`` when the job uses ``Torchrun``;
   * the SDK v2 layout (``sagemaker_program`` / ``sagemaker_submit_directory``
     hyperparameters): the program from the unpacked ``sourcedir.tar.gz``;
   * the built-in K-Means image (``.../kmeans:1``): ``python -m
     tsc_toolkit.sagemaker.container.kmeans train``, which reads ``SM_CHANNEL_TRAIN``
     (recordIO-protobuf or CSV) and ``input/config/hyperparameters.json`` and writes
     ``model_algo-1`` into ``SM_MODEL_DIR``;
   * anything else: this toolkit's entry point, ``python -m tsc_toolkit.sagemaker.train``;

4. sets the portable ``SM_*`` environment (``SM_MODEL_DIR``, ``SM_CHANNEL_<NAME>``,
   ``SM_CHANNELS``, ``SM_HPS``, ``SM_HP_<NAME>``, ``SM_HOSTS``, ``SM_CURRENT_HOST``,
   ``SM_NUM_GPUS``, ``SM_NUM_CPUS``, ``SM_OUTPUT_DATA_DIR``, ``SM_OUTPUT_FAILURE``, ...), plus
   ``SM_CHECKPOINT_DIR`` and the job's own ``Environment``;
5. runs it as a subprocess: ``InstanceCount`` x processes per host, under ``torchrun`` on
   loopback when that is more than one process; stdout and stderr are captured line by line
   (:attr:`LocalRun.lines`, and CloudWatch Logs when the session has them, so a job handle
   reads the same logs as on AWS);
6. on success packs ``SM_MODEL_DIR`` into ``model.tar.gz`` and puts it at the job's exact
   ``ModelArtifacts.S3ModelArtifacts`` key (``output/data`` goes to ``output.tar.gz``); on
   failure keeps the reason (``AlgorithmError: <the failure file>``); checkpoints go back to
   ``CheckpointConfig.S3Uri`` either way.

Examples
--------
>>> from tsc_toolkit.sagemaker.local.runner import KMEANS_CONTAINER_MODULE, TRAIN_MODULE
>>> KMEANS_CONTAINER_MODULE, TRAIN_MODULE
('tsc_toolkit.sagemaker.container.kmeans', 'tsc_toolkit.sagemaker.train')
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ...io.archives import extract_tar
from ..shared.aws import TRAINING_LOG_GROUP, is_builtin_kmeans_image, split_s3_uri

__all__ = ["LocalRun", "run_training_job", "start_training_job", "get_run",
           "KMEANS_CONTAINER_MODULE", "TRAIN_MODULE", "LOG_GROUP"]

#: Module run for jobs on the built-in K-Means image (``python -m <module> train``).
KMEANS_CONTAINER_MODULE = "tsc_toolkit.sagemaker.container.kmeans"
#: This toolkit's training entry point (the default when a job names no code).
TRAIN_MODULE = "tsc_toolkit.sagemaker.train"
#: CloudWatch Logs group of training jobs.
LOG_GROUP = TRAINING_LOG_GROUP

_QUALITY_METRIC = re.compile(r"#quality_metric: host=\S+, (\w+) (\w+) <loss>=(\S+)")
_RUNS: dict[str, LocalRun] = {}
_RUNS_LOCK = threading.Lock()


def get_run(job_name: str) -> LocalRun | None:
    """The local run of ``job_name`` started in this Python process, if any."""
    with _RUNS_LOCK:
        return _RUNS.get(job_name)


class LocalRun:
    """One local execution of a training job (see :func:`start_training_job`).

    Attributes
    ----------
    job_name : str
    status : str
        ``"InProgress"``, ``"Completed"``, ``"Failed"`` or ``"Stopped"`` (SageMaker's names).
    secondary_status : str
    failure_reason : str or None
    returncode : int or None
    lines : list of str
        Everything the job printed so far (stdout and stderr, all hosts).
    start_time, end_time : datetime or None
    model_artifact : str or None
        Where ``model.tar.gz`` was put.
    root : Path
        The job's ``/opt/ml``.
    """

    def __init__(self, job_name: str, root: Path):
        self.job_name = job_name
        self.root = root
        self.status = "InProgress"
        self.secondary_status = "Starting"
        self.failure_reason: str | None = None
        self.returncode: int | None = None
        self.lines: list[str] = []
        self.start_time = datetime.now(timezone.utc)
        self.end_time: datetime | None = None
        self.model_artifact: str | None = None
        self.command: list[str] | None = None
        self._procs: list[subprocess.Popen] = []
        self._stop_requested = False
        self._timed_out = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ state

    @property
    def done(self) -> bool:
        """Whether the run has ended (completed, failed or stopped)."""
        return self._done.is_set()

    @property
    def elapsed_seconds(self) -> float:
        end = self.end_time or datetime.now(timezone.utc)
        return (end - self.start_time).total_seconds()

    def wait(self, timeout: float | None = None) -> LocalRun:
        """Block until the run ends; returns ``self``. Raises TimeoutError after ``timeout``."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"Local training job {self.job_name} still runs after "
                               f"{timeout} s.")
        return self

    def stop(self) -> None:
        """Stop the run (SIGTERM to its processes, then SIGKILL after 10 s)."""
        self._stop_requested = True
        self.secondary_status = "Stopping"
        for p in list(self._procs):
            _terminate(p)

    def log_text(self, tail: int | None = None) -> str:
        """The captured output, the last ``tail`` lines only if given."""
        with self._lock:
            lines = self.lines if tail is None else self.lines[-tail:]
            return "\n".join(lines)

    def describe_patch(self) -> dict[str, Any]:
        """The DescribeTrainingJob fields this run knows better than a mock service."""
        patch: dict[str, Any] = {"TrainingJobStatus": self.status,
                                 "SecondaryStatus": self.secondary_status,
                                 "TrainingStartTime": self.start_time}
        if self.end_time is not None:
            patch["TrainingEndTime"] = self.end_time
            seconds = max(1, int(round(self.elapsed_seconds)))
            patch["TrainingTimeInSeconds"] = seconds
            patch["BillableTimeInSeconds"] = seconds
        if self.failure_reason:
            patch["FailureReason"] = self.failure_reason
        return patch

    def final_metrics(self, definitions: list[dict] | None) -> list[dict[str, Any]]:
        """``FinalMetricDataList`` as SageMaker reports it: the last match of each regex.

        ``definitions`` are ``{"Name", "Regex"}`` dicts; the built-in K-Means lines
        (``#quality_metric: host=algo-1, train msd <loss>=0.5``) count as ``train:msd``.
        """
        with self._lock:
            lines = list(self.lines)
        found: dict[str, float] = {}
        patterns = [(d["Name"], re.compile(d["Regex"])) for d in definitions or []]
        for line in lines:
            for name, pattern in patterns:
                m = pattern.search(line)
                if m:
                    try:
                        found[name] = float(m.group(1))
                    except (ValueError, IndexError):
                        pass
            m = _QUALITY_METRIC.search(line)
            if m:
                try:
                    found[f"{m.group(1)}:{m.group(2)}"] = float(m.group(3))
                except ValueError:
                    pass
        when = self.end_time or datetime.now(timezone.utc)
        return [{"MetricName": k, "Value": v, "Timestamp": when} for k, v in found.items()]

    def _add_line(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def __repr__(self) -> str:
        return f"LocalRun({self.job_name!r}, status={self.status!r})"


def start_training_job(job: str | dict, *, boto_session=None, workdir: str | os.PathLike |
                       None = None, processes_per_host: int | None = None,
                       on_line: Callable[[str], None] | None = None,
                       keep_workdir: bool = False) -> LocalRun:
    """Start running a training job in a background thread; returns its :class:`LocalRun`.

    Parameters
    ----------
    job : str or dict
        A training job name (read with ``DescribeTrainingJob`` through ``boto_session``), or
        a job definition with DescribeTrainingJob's keys (``TrainingJobName``,
        ``AlgorithmSpecification``, ``HyperParameters``, ``InputDataConfig``,
        ``OutputDataConfig``, ``ResourceConfig``, ...).
    boto_session : boto3.Session, optional
        For S3 (channels, model, checkpoints), SageMaker and CloudWatch Logs. Default:
        ``boto3.Session()``. Not needed for a definition whose URIs are all local.
    workdir : path, optional
        Where to put the job's ``opt/ml``; default a new temporary folder, removed at the
        end unless ``keep_workdir``.
    processes_per_host : int, optional
        Processes per host for ``Torchrun`` jobs; default the job's
        ``process_count_per_node``, else the number of GPUs here, else 1.
    on_line : callable, optional
        Called with every output line as it arrives.
    """
    sm = None
    if isinstance(job, str):
        session = boto_session or _default_session()
        sm = session.client("sagemaker")
        desc = sm.describe_training_job(TrainingJobName=job)
    else:
        session = boto_session
        desc = dict(job)
    name = desc["TrainingJobName"]
    base = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix=f"{name}-"))
    run = LocalRun(name, base / "opt" / "ml")
    with _RUNS_LOCK:
        _RUNS[name] = run
    run._thread = threading.Thread(
        target=_execute, name=f"local-training-{name}", daemon=True,
        args=(run, desc, session, processes_per_host, on_line,
              None if keep_workdir or workdir is not None else base))
    run._thread.start()
    return run


def run_training_job(job: str | dict, *, boto_session=None, workdir=None,
                     processes_per_host: int | None = None,
                     on_line: Callable[[str], None] | None = None,
                     keep_workdir: bool = False) -> LocalRun:
    """Run a training job here and wait for it; returns the ended :class:`LocalRun`.

    Same parameters as :func:`start_training_job`. A failing job does not raise: look at
    ``run.status`` and ``run.failure_reason``.
    """
    return start_training_job(job, boto_session=boto_session, workdir=workdir,
                              processes_per_host=processes_per_host, on_line=on_line,
                              keep_workdir=keep_workdir).wait()


# ---------------------------------------------------------------------- execution

def _default_session():
    import boto3

    return boto3.Session()


def _execute(run: LocalRun, desc: dict, session, processes_per_host, on_line, cleanup):
    logs = _CloudWatchLogs(session, run) if session is not None else None
    try:
        run.secondary_status = "Downloading"
        layout = _prepare(run, desc, session)
        run.secondary_status = "Training"
        if not run._stop_requested:
            _run_processes(run, desc, layout, processes_per_host, on_line, logs, session)
        run.secondary_status = "Uploading"
        _finish(run, desc, layout, session)
    except Exception as err:  # noqa: BLE001 - a job that cannot start fails, as on AWS
        run.status = "Failed"
        run.failure_reason = run.failure_reason or f"ClientError: {err}"
        run._add_line(f"Local training job failed to run: {err}")
    finally:
        if run.status == "InProgress":
            run.status = "Completed"
        run.secondary_status = "MaxRuntimeExceeded" if run._timed_out else run.status
        run.end_time = datetime.now(timezone.utc)
        if logs is not None:
            logs.flush()
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        run._done.set()


class _Layout:
    def __init__(self, root: Path):
        self.root = root
        self.config = root / "input" / "config"
        self.data = root / "input" / "data"
        self.model = root / "model"
        self.output = root / "output"
        self.failure = self.output / "failure"
        self.output_data = self.output / "data"
        self.checkpoints = root / "checkpoints"
        for d in (self.config, self.data, self.model, self.output_data, self.checkpoints):
            d.mkdir(parents=True, exist_ok=True)
        self.channels: dict[str, Path] = {}


def _prepare(run: LocalRun, desc: dict, session) -> _Layout:
    layout = _Layout(run.root)
    hps = dict(desc.get("HyperParameters") or {})
    (layout.config / "hyperparameters.json").write_text(json.dumps(hps))
    channels = desc.get("InputDataConfig") or []
    input_config = {}
    for ch in channels:
        name = ch["ChannelName"]
        target = layout.data / name
        target.mkdir(parents=True, exist_ok=True)
        _download_channel(ch.get("DataSource") or {}, target, session)
        layout.channels[name] = target
        input_config[name] = {"ContentType": ch.get("ContentType", ""),
                              "TrainingInputMode": ch.get("InputMode", "File"),
                              "S3DistributionType": (ch.get("DataSource", {}).get(
                                  "S3DataSource", {}).get("S3DistributionType",
                                                          "FullyReplicated")),
                              "RecordWrapperType": ch.get("RecordWrapperType", "None")}
    (layout.config / "inputdataconfig.json").write_text(json.dumps(input_config))
    count = int((desc.get("ResourceConfig") or {}).get("InstanceCount", 1))
    hosts = [f"algo-{i + 1}" for i in range(count)]
    (layout.config / "resourceconfig.json").write_text(json.dumps({
        "current_host": "algo-1", "hosts": hosts, "network_interface_name": "lo",
        "current_instance_type": (desc.get("ResourceConfig") or {}).get("InstanceType", "local"),
        "current_group_name": "homogeneousCluster", "instance_groups": []}))
    ck = desc.get("CheckpointConfig") or {}
    if ck.get("S3Uri"):
        _copy_from(ck["S3Uri"], layout.checkpoints, session)
    return layout


def _download_channel(source: dict, target: Path, session) -> None:
    s3 = source.get("S3DataSource")
    if s3 is None:
        raise ValueError(f"Only S3 data sources run locally, not {sorted(source)}.")
    uri = s3["S3Uri"]
    if s3.get("S3DataType", "S3Prefix") == "ManifestFile":
        text = _read_uri(uri, session).decode("utf-8")
        manifest = json.loads(text)
        prefix = manifest[0]["prefix"]
        for rel in manifest[1:]:
            data = _read_uri(prefix + rel, session)
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
        return
    if s3.get("S3DataType", "S3Prefix") == "AugmentedManifestFile":
        raise ValueError("AugmentedManifestFile channels do not run locally.")
    _copy_from(uri, target, session)


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(urlparse(uri).path)
    if "://" not in uri:
        return Path(uri)
    return None


def _read_uri(uri: str, session) -> bytes:
    local = _local_path(uri)
    if local is not None:
        return local.read_bytes()
    bucket, key = split_s3_uri(uri)
    return session.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _copy_from(uri: str, target: Path, session) -> None:
    """Copy an S3 prefix (or a local file/folder) into ``target``, keeping relative paths."""
    local = _local_path(uri)
    if local is not None:
        if local.is_dir():
            shutil.copytree(local, target, dirs_exist_ok=True)
        elif local.is_file():
            shutil.copy2(local, target / local.name)
        return
    bucket, prefix = split_s3_uri(uri)
    s3 = session.client("s3")
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            rel = key[len(prefix):].lstrip("/") if key != prefix else key.rsplit("/", 1)[-1]
            if not rel:
                rel = key.rsplit("/", 1)[-1]
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(dest))


def _copy_to(source: Path, uri: str, session) -> None:
    local = _local_path(uri)
    if local is not None:
        local.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, local, dirs_exist_ok=True)
        return
    bucket, prefix = split_s3_uri(uri)
    s3 = session.client("s3")
    for f in sorted(source.rglob("*")):
        if f.is_file():
            key = "/".join(p for p in (prefix.rstrip("/"), f.relative_to(source).as_posix()) if p)
            s3.upload_file(str(f), bucket, key)


def _put(data: bytes, uri: str, session) -> None:
    local = _local_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(data)
        return
    bucket, key = split_s3_uri(uri)
    session.client("s3").put_object(Bucket=bucket, Key=key, Body=data)


# ---------------------------------------------------------------------- what to run

def _program(desc: dict, layout: _Layout, session) -> tuple[list[str], Path, dict, dict]:
    """(argv after the python/torchrun launcher, working dir, extra env, distribution)."""
    hps = dict(desc.get("HyperParameters") or {})
    image = (desc.get("AlgorithmSpecification") or {}).get("TrainingImage")
    if is_builtin_kmeans_image(image):
        return (["-m", KMEANS_CONTAINER_MODULE, "train"], layout.root, {}, {})
    drivers = layout.channels.get("sm_drivers")
    if drivers is not None and (drivers / "sourcecode.json").is_file():
        code = layout.channels.get("code", layout.root / "input" / "data" / "code")
        source = json.loads((drivers / "sourcecode.json").read_text() or "{}")
        distributed = {}
        dist_file = drivers / "distributed.json"
        if dist_file.is_file():
            distributed = json.loads(dist_file.read_text() or "{}")
        script = (drivers / "sm_train.sh").read_text() if (drivers / "sm_train.sh").is_file() \
            else ""
        torchrun = "torchrun_driver.py" in script
        if "mpi_driver.py" in script:
            raise ValueError("MPI jobs do not run locally; use Torchrun.")
        source_dir = str(source.get("source_dir") or "")
        if source_dir.endswith(".tar.gz"):
            with tarfile.open(code / Path(source_dir).name) as tar:
                extract_tar(tar, code)
        env = {"SM_SOURCE_DIR": str(code), "SM_ENTRY_SCRIPT": str(source.get("entry_script")),
               "SM_DISTRIBUTED_CONFIG": json.dumps(distributed)}
        args = _hp_args(hps)
        if source.get("command"):
            parts = shlex.split(source["command"]) + [str(a) for a in source.get("args") or []]
            return (["--shell", *parts], code, env, {})
        entry = str(source["entry_script"])
        user_args = [str(a) for a in source.get("args") or []]
        if entry.endswith(".sh"):
            return (["--shell", "bash", entry, *user_args, *args], code, env, {})
        return ([entry, *user_args, *args], code, env,
                {"torchrun": torchrun,
                 "processes": distributed.get("process_count_per_node")})
    if "sagemaker_program" in hps:
        program = json.loads(hps["sagemaker_program"]) if hps["sagemaker_program"].startswith(
            '"') else hps["sagemaker_program"]
        submit = hps.get("sagemaker_submit_directory", "")
        submit = json.loads(submit) if submit.startswith('"') else submit
        code = layout.root / "code"
        code.mkdir(exist_ok=True)
        if submit.endswith(".tar.gz"):
            with tarfile.open(fileobj=io.BytesIO(_read_uri(submit, session))) as tar:
                extract_tar(tar, code)
        torchrun = str(hps.get("sagemaker_torch_distributed_enabled", "")).strip('"') == "true"
        user = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
        return ([program, *_hp_args(user)], code, {"SM_USER_ENTRY_POINT": program},
                {"torchrun": torchrun, "processes": None})
    return (["-m", TRAIN_MODULE, *_hp_args(hps)], layout.root, {},
            {"torchrun": True, "processes": None})


def _hp_args(hps: dict) -> list[str]:
    args = []
    for key, value in hps.items():
        args += [f"--{key}", _decode(value)]
    return args


def _decode(value: Any) -> str:
    """Hyperparameter strings as the v3 drivers pass them (JSON strings lose their quotes)."""
    if not isinstance(value, str):
        return json.dumps(value)
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:  # pragma: no cover
        return 0


def _run_processes(run, desc, layout: _Layout, processes_per_host, on_line, logs, session):
    argv, cwd, extra_env, dist = _program(desc, layout, session)
    resource = desc.get("ResourceConfig") or {}
    count = int(resource.get("InstanceCount", 1))
    hosts = [f"algo-{i + 1}" for i in range(count)]
    gpus = _gpu_count()
    processes = int(processes_per_host or dist.get("processes") or gpus or 1)
    torchrun = bool(dist.get("torchrun")) and count * processes > 1
    run_hosts = hosts if torchrun else hosts[:1]
    port = _free_port()
    base_env = _environment(desc, layout, hosts, gpus)
    base_env.update(extra_env)
    base_env.update({k: str(v) for k, v in (desc.get("Environment") or {}).items()})
    base_env["SM_MASTER_PORT"] = str(port)
    base_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(cwd), os.environ.get("PYTHONPATH", "")) if p)
    for rank, host in enumerate(run_hosts):
        env = dict(base_env, SM_CURRENT_HOST=host, SM_CURRENT_HOST_RANK=str(rank))
        if argv and argv[0] == "--shell":
            cmd = argv[1:]
        elif torchrun:
            launcher = [sys.executable, "-m", "torch.distributed.run",
                        f"--nnodes={len(run_hosts)}", f"--nproc_per_node={processes}"]
            if len(run_hosts) > 1:
                launcher += ["--master_addr=127.0.0.1", f"--master_port={port}",
                             f"--node_rank={rank}"]
            else:
                launcher += ["--standalone"]
            cmd = launcher + argv
        else:
            cmd = [sys.executable, *argv]
        if rank == 0:
            run.command = cmd
            run._add_line("Executing command: " + " ".join(shlex.quote(c) for c in cmd))
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1,
                                start_new_session=True)
        run._procs.append(proc)
        threading.Thread(target=_pump, args=(proc, run, host, len(run_hosts) > 1, on_line,
                                             logs), daemon=True).start()
    max_run = (desc.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    deadline = time.monotonic() + float(max_run) if max_run else None
    codes = []
    for proc in run._procs:
        while True:
            try:
                codes.append(proc.wait(timeout=1.0))
                break
            except subprocess.TimeoutExpired:
                if logs is not None:
                    logs.flush(min_interval=1.0)
                if deadline is not None and time.monotonic() > deadline:
                    run._timed_out = True
                    run.stop()
                    deadline = None
    # let the pump threads drain the pipes
    for _ in range(50):
        if all(p.stdout is None or p.stdout.closed for p in run._procs):
            break
        time.sleep(0.05)
    run.returncode = next((c for c in codes if c != 0), 0)
    if run._stop_requested:
        run.status = "Stopped"
    elif run.returncode != 0:
        run.status = "Failed"
        message = layout.failure.read_text().strip() if layout.failure.is_file() else ""
        if not message:
            message = f"the process exited with status {run.returncode}"
            tail = [line for line in run.lines[-5:] if line.strip()]
            if tail:
                message += ": " + " | ".join(tail)
        run.failure_reason = f"AlgorithmError: {message}"


def _pump(proc, run: LocalRun, host: str, prefix: bool, on_line, logs):
    with proc.stdout:
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            shown = f"[{host}] {line}" if prefix else line
            run._add_line(shown)
            if logs is not None:
                logs.add(host, line)
            if on_line is not None:
                try:
                    on_line(shown)
                except Exception:  # noqa: BLE001 - a display callback must not kill the job
                    pass


def _terminate(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return

    def kill_later():
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    threading.Thread(target=kill_later, daemon=True).start()


def _environment(desc: dict, layout: _Layout, hosts: list[str], gpus: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SM_", "RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_"))}
    hps = {k: v for k, v in (desc.get("HyperParameters") or {}).items()
           if not k.startswith("sagemaker_")}
    decoded = {}
    for k, v in hps.items():
        try:
            decoded[k] = json.loads(v)
        except (TypeError, ValueError):
            decoded[k] = v
    resource = desc.get("ResourceConfig") or {}
    channels = sorted(layout.channels)
    env.update({
        "TRAINING_JOB_NAME": desc["TrainingJobName"],
        "SM_MODEL_DIR": str(layout.model),
        "SM_INPUT_DIR": str(layout.root / "input"),
        "SM_INPUT_DATA_DIR": str(layout.data),
        "SM_INPUT_CONFIG_DIR": str(layout.config),
        "SM_OUTPUT_DIR": str(layout.output),
        "SM_OUTPUT_FAILURE": str(layout.failure),
        "SM_OUTPUT_DATA_DIR": str(layout.output_data),
        "SM_CHECKPOINT_DIR": str(layout.checkpoints),
        "SM_CHANNELS": json.dumps(channels),
        "SM_HPS": json.dumps(decoded),
        "SM_HOSTS": json.dumps(hosts),
        "SM_HOST_COUNT": str(len(hosts)),
        "SM_CURRENT_HOST": hosts[0],
        "SM_CURRENT_HOST_RANK": "0",
        "SM_MASTER_ADDR": "127.0.0.1",
        "SM_CURRENT_INSTANCE_TYPE": resource.get("InstanceType", "local"),
        "SM_NUM_GPUS": str(gpus),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_NEURONS": "0",
        "SM_NETWORK_INTERFACE_NAME": "lo",
        "SM_LOG_LEVEL": "20",
        "SM_RESOURCE_CONFIG": (layout.config / "resourceconfig.json").read_text(),
        "SM_INPUT_DATA_CONFIG": (layout.config / "inputdataconfig.json").read_text(),
        "PYTHONUNBUFFERED": "1",
    })
    for name, path in layout.channels.items():
        env[f"SM_CHANNEL_{name.upper()}"] = str(path)
    for k, v in decoded.items():
        env[f"SM_HP_{re.sub('[^A-Za-z0-9]', '_', k).upper()}"] = \
            v if isinstance(v, str) else json.dumps(v)
    env["SM_TRAINING_ENV"] = json.dumps({
        "job_name": desc["TrainingJobName"], "hosts": hosts, "current_host": hosts[0],
        "channel_input_dirs": {k: str(v) for k, v in layout.channels.items()},
        "hyperparameters": decoded, "model_dir": str(layout.model),
        "output_data_dir": str(layout.output_data), "num_gpus": gpus})
    return env


def _finish(run: LocalRun, desc: dict, layout: _Layout, session) -> None:
    ck = desc.get("CheckpointConfig") or {}
    if ck.get("S3Uri") and any(layout.checkpoints.iterdir()):
        _copy_to(layout.checkpoints, ck["S3Uri"], session)
    if run.status != "InProgress":
        return
    artifact = (desc.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    output_path = (desc.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not artifact and output_path:
        artifact = f"{output_path.rstrip('/')}/{run.job_name}/output/model.tar.gz"
    if artifact:
        _put(_tar_folder(layout.model), artifact, session)
        run.model_artifact = artifact
        if any(layout.output_data.iterdir()):
            _put(_tar_folder(layout.output_data), artifact.rsplit("/", 1)[0] +
                 "/output.tar.gz", session)
    run.status = "Completed"


def _tar_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for f in sorted(folder.rglob("*")):
            tar.add(f, arcname=f.relative_to(folder).as_posix(), recursive=False)
    return buf.getvalue()


class _CloudWatchLogs:
    """Send a run's lines to CloudWatch Logs (one stream per host), as SageMaker does."""

    def __init__(self, session, run: LocalRun):
        self.run = run
        self.pending: dict[str, list[tuple[int, str]]] = {}
        self.lock = threading.Lock()
        self.last = 0.0
        try:
            self.client = session.client("logs")
        except Exception:  # noqa: BLE001 - logs are a convenience
            self.client = None
        self.streams: set[str] = set()

    def add(self, host: str, line: str) -> None:
        with self.lock:
            self.pending.setdefault(host, []).append((int(time.time() * 1000), line or " "))

    def flush(self, min_interval: float = 0.0) -> None:
        if self.client is None or time.monotonic() - self.last < min_interval:
            return
        self.last = time.monotonic()
        with self.lock:
            pending, self.pending = self.pending, {}
        for host, events in pending.items():
            stream = f"{self.run.job_name}/{host}-{int(self.run.start_time.timestamp())}"
            try:
                if stream not in self.streams:
                    try:
                        self.client.create_log_group(logGroupName=LOG_GROUP)
                    except self.client.exceptions.ResourceAlreadyExistsException:
                        pass
                    try:
                        self.client.create_log_stream(logGroupName=LOG_GROUP,
                                                      logStreamName=stream)
                    except self.client.exceptions.ResourceAlreadyExistsException:
                        pass
                    self.streams.add(stream)
                for i in range(0, len(events), 5000):
                    self.client.put_log_events(
                        logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in
                                   events[i:i + 5000]])
            except Exception:  # noqa: BLE001 - no logs service: lines stay in LocalRun.lines
                self.client = None
                return
