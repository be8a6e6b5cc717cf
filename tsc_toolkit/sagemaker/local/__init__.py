"""SageMaker on this machine: moto for the API, the real container code for the work.

* :mod:`.offline`: :func:`~.offline.offline_aws` starts moto's server on loopback and
  installs the hooks below;
* :mod:`.runner`: runs a training job's definition here, without Docker;
* :mod:`.serving`: answers ``InvokeEndpoint`` and runs transform jobs with the containers'
  handlers.

The notebook client never imports this folder; :func:`~.offline.offline_aws` announces its
sessions through :mod:`tsc_toolkit.sagemaker.shared.sessions`.
"""
