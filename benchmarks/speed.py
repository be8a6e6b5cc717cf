"""Training and encoding throughput at fg-research's default hyperparameters.

Three synthetic data sets with the same number of observed time steps: equal lengths,
varying lengths (uniform between a third and the full length, same mean length) and equal
lengths with 20 % of the values missing. Steps per second count optimisation steps
(``batch_size`` anchors each); the clock starts after a few warm-up steps.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from .common import Config, Section, Timer, to_markdown

BATCH_SIZE = 10  # fg-research's default, also CNNKMeans's


class _StepClock:
    """Callback that times training epochs and counts steps after the warm-up steps."""

    def __init__(self, warmup: int):
        self.warmup = warmup
        self.t0 = None
        self.steps0 = 0
        self.t_end = None
        self.steps_end = 0

    def on_train_begin(self, model):
        self.t_begin = time.perf_counter()

    def on_epoch_end(self, model, record):
        now = time.perf_counter()
        if self.t0 is None and model.n_steps_ >= self.warmup:
            self.t0, self.steps0 = now, model.n_steps_
        self.t_end, self.steps_end = now, model.n_steps_


def _datasets(cfg: Config) -> dict[str, np.ndarray]:
    from tsc_toolkit.io.datasets import make_series

    n, length = cfg.speed_series, cfg.speed_length
    equal, _ = make_series(n, n_clusters=4, length=length, random_state=0)
    # lengths uniform on [L/2, 3L/2): mean L, so the same number of time steps as `equal`
    varying, _ = make_series(n, n_clusters=4, length=3 * length // 2, short_fraction=1.0,
                             min_length=length // 2, random_state=0)
    missing, _ = make_series(n, n_clusters=4, length=length, missing_rate=0.2, random_state=0)
    return {"equal length": equal, "varying length": varying, "20% missing values": missing}


def _measure(X: np.ndarray, cfg: Config, device: str) -> dict:
    from tsc_toolkit import CNNKMeans

    # One epoch = n_series / batch_size steps; the warm-up is whole epochs, so measure whole
    # epochs after it.
    per_epoch = int(np.ceil(len(X) / BATCH_SIZE))
    warm_epochs = int(np.ceil(cfg.speed_warmup_steps / per_epoch))
    timed_epochs = max(1, int(np.ceil(cfg.speed_steps / per_epoch)))
    clock = _StepClock(warm_epochs * per_epoch)
    model = CNNKMeans(clusters=4, epochs=warm_epochs + timed_epochs, random_state=0,
                      device=device, score_sample_size=0, n_init=1)
    model.fit(X, callbacks=[clock])
    steps = clock.steps_end - clock.steps0
    seconds = clock.t_end - clock.t0
    if steps == 0:  # everything was warm-up: time it all
        steps, seconds = clock.steps_end, clock.t_end - clock.t_begin
    observed = (~np.isnan(X)).sum() / len(X)
    with Timer() as t:
        model.transform(X)
    return {"steps": steps, "seconds": seconds, "steps_per_s": steps / seconds,
            "series_per_s": steps * BATCH_SIZE / seconds,
            "mean_observed_steps": observed,
            "encode_series_per_s": len(X) / t.seconds}


def run(cfg: Config) -> Section:
    import torch

    section = Section("speed", "Training speed")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    with Timer() as total:
        data = _datasets(cfg)
        for device in devices:
            for kind, X in data.items():
                r = _measure(X, cfg, device)
                rows.append({"device": device, "data": kind, **r})
        base = {d: next(r for r in rows if r["device"] == d and r["data"] == "equal length")
                for d in devices}
        for r in rows:
            r["relative_to_equal"] = r["steps_per_s"] / base[r["device"]]["steps_per_s"]
    table = pd.DataFrame(rows)
    section.seconds = total.seconds
    section.tables["training"] = table
    shown = pd.DataFrame({
        "device": table.device, "data": table.data,
        "steps/s": table.steps_per_s, "series/s (training)": table.series_per_s,
        "vs equal length": [f"{v:.2f}x" for v in table.relative_to_equal],
        "encode series/s": table.encode_series_per_s,
        "timed steps": table.steps,
    })
    section.markdown["training"] = to_markdown(shown)
    section.intro = (
        f"CNNKMeans at fg-research's defaults (10 blocks, 40 filters, kernel 3, reduced size "
        f"160, output 320, 10 negative samples, batch 10, lr 0.001) on {cfg.speed_series} "
        f"synthetic series (`make_series`, 4 clusters). Equal length {cfg.speed_length}; varying "
        f"lengths uniform on [{cfg.speed_length // 2}, {3 * cfg.speed_length // 2}) (the same "
        f"mean, so about the same number of time steps); 20 % missing values at length "
        f"{cfg.speed_length}. Steps/s is measured over {cfg.speed_steps}+ optimisation steps after "
        f"{cfg.speed_warmup_steps}+ warm-up steps (whole epochs); series/s (training) = steps/s x "
        "batch size (anchor series per second; each step also encodes 10 positives and 100 "
        "negatives). Encode series/s is `model.transform` on the same series. "
        f"{cfg.threads} CPU threads."
    )
    if "cuda" not in devices:
        section.notes.append("No GPU on this machine: CPU rows only. The same script adds CUDA "
                             "rows when `torch.cuda.is_available()`.")
    return section
