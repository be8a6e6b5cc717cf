"""How many threads inference uses: one per core that other processes leave free.

A fit picks its torch threads once, from the cores other processes keep busy over a fifth of
a second (:func:`tsc_toolkit.embedding.training.threads_for_training`). Inference is called
far more often, on far less work, so it cannot wait that long: :func:`inference_threads`
reads the machine's busy time since its previous call instead (two reads of ``/proc``, a few
microseconds) and runs the block with

- torch on one thread per free core (at most what ``torch.get_num_threads()`` allows), so
  a request does not wait on a thread whose core another process holds, and on one thread
  for a few series (:data:`SMALL_WORK`);
- the BLAS and OpenMP pools of NumPy, SciPy and scikit-learn on one thread. The matrix
  products of inference are small; with their own pools spinning between calls beside
  torch's, a one-series prediction took 32 ms against 12.5 ms with them at one thread
  (2-core AMD EPYC, idle), and a hundred series 484 ms against 357 ms.

The settings are restored when the block ends. They are per calling thread (OpenMP keeps
its thread count per thread), so the threads of a server each get their own.

Examples
--------
>>> from tsc_toolkit.threads import inference_threads
>>> with inference_threads() as n:
...     n >= 1
True
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

__all__ = ["cores", "cores_busy_elsewhere", "busy_cores_now", "inference_threads", "work_of",
           "SMALL_WORK"]


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _ticks() -> tuple[int, int] | None:
    """(ticks every process spent busy, ticks this process spent), from /proc; None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            cpu = [int(v) for v in fh.readline().split()[1:]]
        with open("/proc/self/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return sum(cpu) - cpu[3] - (cpu[4] if len(cpu) > 4 else 0), \
            int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None


def _busy(before, after, elapsed: float) -> float:
    hz = os.sysconf("SC_CLK_TCK")
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / hz / elapsed)


def cores_busy_elsewhere(window: float = 0.2) -> float | None:
    """CPU cores kept busy by other processes over ``window`` seconds (Linux), else None.

    Read from ``/proc/stat`` (all processes) minus ``/proc/self/stat`` (this one).
    """
    before = _ticks()
    t0 = time.perf_counter()
    time.sleep(window)
    after = _ticks()
    if before is None or after is None:
        return None
    try:
        return _busy(before, after, time.perf_counter() - t0)
    except (OSError, ValueError, AttributeError):
        return None


# The previous reading: (monotonic time, ticks) and the estimate it gave.
_LAST: dict = {"time": None, "ticks": None, "busy": 0.0}
_LAST_LOCK = threading.Lock()
#: Readings closer together than this reuse the previous estimate (a tick is 10 ms).
MIN_INTERVAL_S = 0.1


def busy_cores_now() -> float:
    """Cores other processes kept busy since the previous call (0 on the first, or off Linux).

    Never sleeps: the window is the time since the previous reading (at least
    :data:`MIN_INTERVAL_S`; closer calls get the previous estimate).
    """
    now = time.monotonic()
    with _LAST_LOCK:
        last_time = _LAST["time"]
        if last_time is not None and now - last_time < MIN_INTERVAL_S:
            return _LAST["busy"]
        ticks = _ticks()
        if ticks is None:
            return 0.0
        if last_time is not None and _LAST["ticks"] is not None:
            try:
                _LAST["busy"] = _busy(_LAST["ticks"], ticks, now - last_time)
            except (OSError, ValueError, AttributeError):
                _LAST["busy"] = 0.0
        _LAST["time"], _LAST["ticks"] = now, ticks
        return _LAST["busy"]


_CONTROLLER = None


def _controller():
    """threadpoolctl's controller of the loaded BLAS and OpenMP libraries (found once)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        import sklearn.neighbors  # noqa: F401  (loads scikit-learn's OpenMP runtime first)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


#: Inputs with fewer values than this (series x channels x steps) run torch on one thread:
#: a few series are too little work to share, and a second thread only waits (one series of
#: 150 steps from a server's thread: 11.5 ms on one thread, 17 ms on two; idle 2-core EPYC).
SMALL_WORK = 4096


def work_of(X) -> int | None:
    """Values in ``X`` when it is an array (its ``size``), else None (unknown)."""
    size = getattr(X, "size", None)
    return int(size) if isinstance(size, (int, np.integer)) else None


# The torch thread count chosen by the outermost inference block running on each thread.
_ACTIVE = threading.local()


@contextmanager
def inference_threads(work: int | None = None) -> Iterator[int]:
    """Run the block with torch on one thread per free core and other pools on one.

    ``work``, the number of values to process when known (:func:`work_of`): below
    :data:`SMALL_WORK`, torch runs on one thread too. Yields the torch thread count chosen.
    Torch is not imported for this: a block that does not use it (a clustering stage alone)
    only has the other pools set to one thread. A block inside another (a stage called by the
    estimator) keeps the outer block's settings: the outer one knows the whole input.
    """
    outer = getattr(_ACTIVE, "threads", None)
    if outer is not None:
        yield outer
        return
    torch = sys.modules.get("torch")
    requested = torch.get_num_threads() if torch is not None else cores()
    if work is not None and work < SMALL_WORK:
        n = 1
    else:
        n = int(max(1, min(requested, cores() - round(busy_cores_now()))))
    _ACTIVE.threads = n
    try:
        with _controller().limit(limits=1):
            if torch is None:
                yield n
                return
            torch.set_num_threads(n)
            try:
                yield n
            finally:
                torch.set_num_threads(requested)
    finally:
        _ACTIVE.threads = None
