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


@pytest.mark.slow
def test_array_memory_fast_run_caps_both_rows_and_reports_the_growth(tmp_path):
    from benchmarks import array_memory

    out = tmp_path / "array_memory.md"
    assert array_memory.main(["--fast", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert [r["kind"] for r in res["rows"]] == ["memmap", "in-memory"]
    for r in res["rows"]:
        assert r["cap_bites"]
        growth = r["rss_anon_peak_mib"] - r["rss_anon_before_mib"]
        assert growth < r["room_mib"]  # the call stayed inside its cap
    text = out.read_text()
    assert "| NO" not in text and "NOT met" not in text


@pytest.mark.slow
def test_serving_benchmark_measures_latency_and_concurrency_without_failures(tmp_path):
    from benchmarks import serving

    out = tmp_path / "serving.md"
    assert serving.main(["--reps", "5", "--requests", "48", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    for state in ("idle", "busy"):
        conc = res[state]["concurrent"]
        assert conc["requests"] == 48 and conc["failed"] == 0 and conc["5xx"] == 0
        assert set(res[state]["in_process_ms"]) == {f"{v} {n}" for v in ("transform", "predict")
                                                    for n in (1, 10, 100)}
    assert "## 16 clients" in out.read_text()
