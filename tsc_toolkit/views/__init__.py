"""Untrained views of series that sit beside the learned embedding: the random-kernel view
(:class:`RandomKernelFeatures`)."""

from .random_kernels import RandomKernelFeatures

__all__ = ["RandomKernelFeatures"]
