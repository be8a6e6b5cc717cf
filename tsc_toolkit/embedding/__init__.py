"""The embedding stage: the T-Loss causal CNN encoder, trained without labels, as a
scikit-learn transformer (:class:`TLossEncoder`)."""

from .tloss import AUTO_STEPS, TLossEncoder

__all__ = ["TLossEncoder", "AUTO_STEPS"]
