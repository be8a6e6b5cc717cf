"""The out-of-core benchmark's smoke run: every point runs capped, the cap bites, it reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks/` sits next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from benchmarks import streaming  # noqa: E402


@pytest.mark.slow
def test_fast_run_caps_every_point_and_writes_the_report(tmp_path):
    out = tmp_path / "streaming.md"
    assert streaming.main(["--fast", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    points = res["encode"] + [res["webscale"]]
    assert all(p["cap_bites"] for p in points)
    assert all(p["rss_anon_peak_mib"] < p["cap_mib"] for p in points)
    assert [p["series"] for p in res["encode"]] == [200, 400, 200]
    text = out.read_text()
    assert "Fitted time exponents" in text and "**projected**" in text
    assert "| NO" not in text
