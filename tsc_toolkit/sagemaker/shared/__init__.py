"""Code that both sides of SageMaker import: the notebook client and the containers.

* :mod:`.recordio`: the recordIO-protobuf format (training data in, predictions out);
* :mod:`.aws`: S3 URIs, the built-in K-Means image name, the training log group;
* :mod:`.sessions`: where an offline emulation announces the sessions it made, so the client
  uses them without importing the emulation.

Nothing here imports from ``tsc_toolkit.sagemaker``'s other folders.
"""
