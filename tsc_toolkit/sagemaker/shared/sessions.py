"""The sessions a running offline emulation made, for the client to use by default.

The client (``fit``, ``attach``) must work the same against AWS and against the local
emulation, without importing the emulation. So the emulation announces itself here when it
starts (:func:`push`) and withdraws when it stops (:func:`remove`); the client asks
:func:`current`. What is pushed is any object with ``boto_session``, ``sagemaker_session``
and ``role`` attributes (:class:`tsc_toolkit.sagemaker.local.offline.OfflineAWS` is one).

Examples
--------
>>> from types import SimpleNamespace
>>> from tsc_toolkit.sagemaker.shared import sessions
>>> bundle = SimpleNamespace(boto_session=None, sagemaker_session=None, role="arn:x")
>>> sessions.push(bundle)
>>> sessions.current() is bundle, sessions.is_bundle(bundle)
(True, True)
>>> sessions.remove(bundle)
>>> sessions.current() is None
True
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["push", "remove", "current", "is_bundle"]

_ACTIVE: list[Any] = []
_LOCK = threading.Lock()


def push(bundle: Any) -> None:
    """Make ``bundle`` the default until :func:`remove` (the newest push wins)."""
    with _LOCK:
        if bundle not in _ACTIVE:
            _ACTIVE.append(bundle)


def remove(bundle: Any) -> None:
    """Withdraw ``bundle`` (no error if it was not pushed)."""
    with _LOCK:
        if bundle in _ACTIVE:
            _ACTIVE.remove(bundle)


def current() -> Any | None:
    """The newest pushed bundle still active, or ``None``."""
    with _LOCK:
        return _ACTIVE[-1] if _ACTIVE else None


def is_bundle(obj: Any) -> bool:
    """Whether ``obj`` is such a bundle (rather than a boto3 or SageMaker SDK session)."""
    return all(hasattr(obj, a) for a in ("boto_session", "sagemaker_session", "role"))
