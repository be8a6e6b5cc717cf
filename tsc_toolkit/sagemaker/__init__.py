"""SageMaker training and serving for CNN-KMeans, and the built-in K-Means estimator API.

Laid out by where the code runs:

* this folder: the notebook client (``training_job``: :func:`fit`, :func:`attach`;
  ``deploy``: :func:`deploy`, :func:`batch_predict`; ``builtin_kmeans``: :class:`KMeans`),
  plus ``train``, the fixed name of the training entry point;
* ``container/``: what runs inside SageMaker's containers (training entry point, request
  handlers, the built-in K-Means stand-in, the HTTP endpoint);
* ``local/``: SageMaker on this machine (:func:`offline_aws`, the job runner, serving);
* ``shared/``: formats and names both sides use (recordIO-protobuf, S3 URIs).

The client never imports ``local/``. Everything here is imported on first use, so
``import tsc_toolkit.sagemaker`` stays cheap and works without boto3 or the SageMaker SDK
(install the ``sagemaker`` extra for launching jobs).
"""

from importlib import import_module

# name -> module that defines it
_LAZY = {
    "fit": "tsc_toolkit.sagemaker.training_job",
    "attach": "tsc_toolkit.sagemaker.training_job",
    "SageMakerJob": "tsc_toolkit.sagemaker.training_job",
    "run_training_job": "tsc_toolkit.sagemaker.local.runner",
    "LocalRun": "tsc_toolkit.sagemaker.local.runner",
    "offline_aws": "tsc_toolkit.sagemaker.local.offline",
    "start_offline_aws": "tsc_toolkit.sagemaker.local.offline",
    "OfflineAWS": "tsc_toolkit.sagemaker.local.offline",
    # serving and the built-in K-Means
    "deploy": "tsc_toolkit.sagemaker.deploy",
    "batch_predict": "tsc_toolkit.sagemaker.deploy",
    "Predictor": "tsc_toolkit.sagemaker.deploy",
    "Transformer": "tsc_toolkit.sagemaker.deploy",
    "KMeans": "tsc_toolkit.sagemaker.builtin_kmeans",
    "KMeansModel": "tsc_toolkit.sagemaker.builtin_kmeans",
    "KMeansPredictor": "tsc_toolkit.sagemaker.builtin_kmeans",
    "RecordSet": "tsc_toolkit.sagemaker.builtin_kmeans",
    "LocalSageMaker": "tsc_toolkit.sagemaker.local.serving",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        module = import_module(_LAZY[name])
        # ``deploy`` names a submodule and its function: the import system binds the submodule to
        # this package as soon as anything imports it, so the package attribute is always the
        # submodule, which is callable (calling it deploys).
        return module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
    raise AttributeError(f"module 'tsc_toolkit.sagemaker' has no attribute {name!r}")
