"""AWS names and URI forms that the client, the containers and the local emulation share.

Examples
--------
>>> from tsc_toolkit.sagemaker.shared.aws import is_builtin_kmeans_image, split_s3_uri
>>> split_s3_uri("s3://bucket/some/key.csv")
('bucket', 'some/key.csv')
>>> is_builtin_kmeans_image("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1")
True
>>> is_builtin_kmeans_image("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-gpu-py311")
False
"""

from __future__ import annotations

from urllib.parse import urlparse

__all__ = ["split_s3_uri", "is_builtin_kmeans_image", "TRAINING_LOG_GROUP"]

#: CloudWatch Logs group that SageMaker training jobs write to.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``("bucket", "key/prefix")`` of ``s3://bucket/key/prefix``; ValueError otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"Not an S3 URI: {uri!r}.")
    return parsed.netloc, parsed.path.lstrip("/")


def is_builtin_kmeans_image(image: str | None) -> bool:
    """Whether ``image`` is SageMaker's built-in K-Means algorithm image."""
    if not image:
        return False
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[0].split("@", 1)[0] == "kmeans"
