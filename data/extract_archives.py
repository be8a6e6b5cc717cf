"""Re-create the bundled UCR/UEA copies in this folder from the copies inside aeon/sktime.

Run once with the `bench` extra installed: ``python data/extract_archives.py``. Each
dataset is saved as ``<name>.npz`` holding float32 ``X_train``, ``X_test`` shaped
(n_series, n_channels, length), NaN-padded when lengths differ, and the string labels
``y_train``, ``y_test``. Files load with ``numpy.load(path, allow_pickle=False)``.
"""

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AEON = ["GunPoint", "ArrowHead", "OSULeaf", "ItalyPowerDemand", "BasicMotions", "JapaneseVowels"]


def pad(series):
    if isinstance(series, np.ndarray) and series.ndim == 3:
        return series.astype(np.float32)
    length = max(s.shape[-1] for s in series)
    out = np.full((len(series), series[0].shape[0], length), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, : s.shape[-1]] = s
    return out


def main():
    from aeon.datasets import load_classification

    for name in AEON:
        parts = {}
        for split in ("train", "test"):
            X, y = load_classification(name, split=split)
            parts[f"X_{split}"], parts[f"y_{split}"] = pad(X), np.asarray(y).astype(str)
        np.savez_compressed(HERE / f"{name}.npz", **parts)
    from sktime.datasets import load_plaid

    parts = {}
    for split in ("train", "test"):
        X, y = load_plaid(split=split, return_type="nested_univ")
        series = [np.asarray(X.iloc[i, 0], dtype=np.float32)[None, :] for i in range(len(X))]
        parts[f"X_{split}"], parts[f"y_{split}"] = pad(series), np.asarray(y).astype(str)
    np.savez_compressed(HERE / "PLAID.npz", **parts)


if __name__ == "__main__":
    main()
