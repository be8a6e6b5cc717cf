"""Code that runs inside SageMaker's containers (or a process standing in for one).

* :mod:`.train`: the CNN-KMeans training entry point (``python -m tsc_toolkit.sagemaker.train``);
* :mod:`.inference`: the CNN-KMeans request handlers of the PyTorch inference container;
* :mod:`.kmeans`: a stand-in for the built-in K-Means image (training and handlers);
* :mod:`.http_endpoint`: the ``/ping`` and ``/invocations`` HTTP contract for one handler;
* :mod:`.server`: a model folder of either kind served over that contract
  (``tsc-toolkit serve``).

Nothing here imports the notebook client or the local emulation.
"""
