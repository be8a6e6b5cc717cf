"""The embedding stage: the T-Loss causal CNN encoder, trained without labels, as a
scikit-learn transformer (:class:`TLossEncoder`).

Its names load on first use, so that importing a light module of this folder (``scaling``)
does not import torch.
"""

from importlib import import_module

__all__ = ["TLossEncoder", "AUTO_STEPS"]


def __getattr__(name):
    if name in __all__:
        return getattr(import_module(".tloss", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
