"""Fast and full run sizes for the notebooks."""

import pytest

from tsc_toolkit.demo import ENV_VAR, fast_mode, settings


@pytest.mark.parametrize("value, expected", [
    ("1", True), ("true", True), ("YES", True), (" on ", True),
    ("0", False), ("", False), ("false", False), ("no", False),
])
def test_fast_mode_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(ENV_VAR, value)
    assert fast_mode() is expected


def test_full_mode_is_the_default(monkeypatch, capsys):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert fast_mode() is False
    s = settings()
    assert s["mode"] == "full"
    assert "Full mode" in capsys.readouterr().out


def test_fast_mode_shrinks_every_size(monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, "1")
    fast = settings()
    assert "Fast mode" in capsys.readouterr().out
    full = settings(fast=False, verbose=False)
    assert fast["mode"] == "fast"
    for key in ("epochs", "n_series", "length", "n_refs"):
        assert fast[key] < full[key]
    assert len(fast["k_range"]) < len(full["k_range"])
    assert fast["model"]["output_size"] < 320 and full["model"] == {}


def test_settings_are_a_fresh_copy_each_call():
    s = settings(fast=True, verbose=False)
    s["model"]["blocks"] = 99
    s["epochs"] = 1000
    again = settings(fast=True, verbose=False)
    assert again["model"]["blocks"] != 99 and again["epochs"] != 1000


def test_quiet_settings_print_nothing(capsys):
    settings(fast=True, verbose=False)
    assert capsys.readouterr().out == ""


def test_fast_mode_can_read_a_given_mapping_without_touching_the_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "0")
    assert fast_mode({ENV_VAR: "1"}) is True
    assert fast_mode() is False


def test_the_printed_series_count_is_capped_to_what_the_notebook_has(capsys):
    assert settings(fast=False, max_series=160)["n_series"] == 160
    assert "160 series" in capsys.readouterr().out
    assert settings(fast=True, max_series=160, verbose=False)["n_series"] == 60
