"""Inference threads: chosen per call from the cores other processes keep busy, restored after."""

import subprocess
import sys
import time

import numpy as np
import torch

from tsc_toolkit import threads


def test_small_work_runs_torch_on_one_thread_and_the_setting_is_restored():
    before = torch.get_num_threads()
    with threads.inference_threads(work=10) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with threads.inference_threads(work=threads.SMALL_WORK * 10) as n:
        assert 1 <= n <= min(before, threads.cores())
        assert torch.get_num_threads() == n
    assert torch.get_num_threads() == before


def test_a_block_inside_another_keeps_the_outer_blocks_threads(monkeypatch):
    readings = []
    monkeypatch.setattr(threads, "busy_cores_now", lambda: readings.append(1) or 0.0)
    before = torch.get_num_threads()
    with threads.inference_threads(work=None) as outer:  # the estimator: reads the load
        with threads.inference_threads(work=None) as inner:  # a stage it calls
            assert inner == outer == torch.get_num_threads()
        assert torch.get_num_threads() == outer  # the inner block restored nothing early
    assert readings == [1]  # the load was read once, by the outer block
    assert torch.get_num_threads() == before
    with threads.inference_threads(work=10) as again:  # the next outer block chooses anew
        assert again == 1


def test_other_pools_run_on_one_thread_inside_and_get_their_setting_back():
    from threadpoolctl import threadpool_info

    outside = {(d["filepath"], d["num_threads"]) for d in threadpool_info()}
    with threads.inference_threads():
        inside = threadpool_info()
        assert inside and all(d["num_threads"] == 1 for d in inside)
    assert {(d["filepath"], d["num_threads"]) for d in threadpool_info()} == outside


def test_busy_cores_follow_another_process_without_sleeping(monkeypatch):
    # Two readings 0.5 s apart of a machine whose other processes used 1.5 cores' worth.
    hz = 100
    readings = iter([(1000, 0), (1000 + int(1.5 * 0.5 * hz), 0)])
    clock = iter([100.0, 100.5, 100.55])  # the third, closer than 0.1 s: the same estimate
    monkeypatch.setattr(threads, "_ticks", lambda: next(readings))
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads.os, "sysconf", lambda name: hz)
    monkeypatch.setattr(threads, "_LAST", {"time": None, "ticks": None, "busy": 0.0})
    assert threads.busy_cores_now() == 0.0  # first reading: nothing to compare with
    assert abs(threads.busy_cores_now() - 1.5) < 1e-9
    monkeypatch.setattr(threads, "cores", lambda: 2)
    with threads.inference_threads(work=None) as n:  # 2 cores, 1.5 busy: one thread left
        assert n == 1


def test_a_busy_core_elsewhere_is_seen():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = threads.cores_busy_elsewhere(window=1.0)
    finally:
        spinner.kill()
        spinner.wait(timeout=10)
    assert busy is None or busy > 0.5


def test_one_series_at_a_time_gets_the_predictions_of_the_whole_batch():
    from tsc_toolkit import CNNKMeans
    from tsc_toolkit.io.datasets import make_series

    X, _ = make_series(40, length=30, random_state=0)
    model = CNNKMeans(clusters=2, epochs=1, blocks=1, filters=8, reduced_size=8, output_size=4,
                      random_state=0, verbose=0).fit(X)
    one = [model.predict(X[i:i + 1])[0] for i in range(len(X))]
    assert np.array_equal(model.predict(X), one)
    np.testing.assert_allclose(model.transform(X)[:3],
                               np.vstack([model.transform(X[i:i + 1]) for i in range(3)]),
                               rtol=1e-5, atol=1e-6)
