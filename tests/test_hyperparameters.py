"""fg-research's kebab-case hyperparameters, parsed and checked in one place."""

import re

import pytest

from tsc_toolkit import CNNKMeans
from tsc_toolkit.hyperparameters import (
    METRIC_DEFINITIONS,
    HyperparameterError,
    parse_hyperparameters,
    to_hyperparameters,
)

FG_NAMES = ["clusters", "algorithm", "blocks", "filters", "kernel-size", "reduced-size",
            "output-size", "negative-samples", "lr", "batch-size", "epochs"]


def test_fg_names_map_to_estimator_keywords():
    kwargs = parse_hyperparameters({"clusters": "3", "algorithm": "elkan", "blocks": "2",
                                    "filters": "16", "kernel-size": "3", "reduced-size": "10",
                                    "output-size": "20", "negative-samples": "10",
                                    "lr": "0.001", "batch-size": "64", "epochs": "100"})
    model = CNNKMeans(**kwargs)
    assert model.kernel_size == 3 and model.batch_size == 64 and model.lr == 0.001


def test_toolkit_names_and_none_values():
    kwargs = parse_hyperparameters({"random-state": "7", "max-steps": "none",
                                    "normalize": "none", "scaling": "channel"})
    assert kwargs == {"random_state": 7, "max_steps": None, "normalize": None,
                      "scaling": "channel"}


def test_the_pretrained_start_is_asked_for_by_name():
    assert parse_hyperparameters({"pretrained": "auto"}) == {"pretrained": "auto"}
    assert parse_hyperparameters({"pretrained": "none"}) == {"pretrained": None}
    assert to_hyperparameters(CNNKMeans())["pretrained"] == "none"  # fg-research's start


def test_neighbour_count_is_an_integer_or_auto():
    assert parse_hyperparameters({"n-neighbors": "auto"}) == {"n_neighbors": "auto"}
    assert parse_hyperparameters({"n-neighbors": "7"}) == {"n_neighbors": 7}
    for bad in ("0", "some"):
        with pytest.raises(HyperparameterError, match="n-neighbors"):
            parse_hyperparameters({"n-neighbors": bad})


def test_integers_written_as_floats_are_accepted_but_fractions_are_not():
    assert parse_hyperparameters({"epochs": "10.0"}) == {"epochs": 10}
    with pytest.raises(HyperparameterError, match="epochs must be an integer"):
        parse_hyperparameters({"epochs": "2.5"})


@pytest.mark.parametrize("name, value", [("clusters", "0"), ("lr", "-1"), ("lr", "fast"),
                                         ("algorithm", "kmeans"), ("batch-size", "")])
def test_bad_values_name_the_hyperparameter(name, value):
    with pytest.raises(HyperparameterError, match=name):
        parse_hyperparameters({name: value})


def test_unknown_names_are_all_listed():
    with pytest.raises(HyperparameterError, match="learning-rate, n-clusters"):
        parse_hyperparameters({"n-clusters": "3", "learning-rate": "0.1"})


def test_round_trip_from_a_model():
    hp = to_hyperparameters(CNNKMeans(clusters=3, kernel_size=5, random_state=0))
    assert set(FG_NAMES) <= set(hp)
    assert hp["kernel-size"] == "5" and hp["compared-length"] == "128"
    assert hp["epochs"] == "none" and hp["clustering"] == "spectral"
    back = parse_hyperparameters(hp)
    assert back["kernel_size"] == 5 and back["compared_length"] == 128
    assert back["epochs"] is None  # an explicit "none" stays the step budget


def test_command_line_and_entry_point_keep_fg_research_epochs():
    assert parse_hyperparameters({"clusters": "3"}, fg_defaults=True)["epochs"] == 100
    assert "epochs" not in parse_hyperparameters({"clusters": "3"})
    assert parse_hyperparameters({"epochs": "7"}, fg_defaults=True)["epochs"] == 7


def test_metric_regexes_read_the_verbose_lines():
    line = ("epoch: 12 train_loss: 0.47336045 train_score: 0.14836602 "
            "valid_loss: nan valid_score: -0.05000000")
    found = {d["Name"]: re.search(d["Regex"], line).group(1) for d in METRIC_DEFINITIONS}
    assert found == {"train_loss": "0.47336045", "train_score": "0.14836602",
                     "valid_loss": "nan", "valid_score": "-0.05000000", "epoch": "12"}
