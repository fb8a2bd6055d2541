import pytest

from mimic_edge.config import PRESETS, config_from_dict, make_config
from mimic_edge.errors import ConfigError


def test_presets_match_design_table():
    assert {k: (p.text_dim, p.audio_dim, p.vision_dim, p.seq_len) for k, p in PRESETS.items()} == {
        "mosi": (300, 74, 47, 50), "mosi-bert": (768, 74, 47, 50), "mosei": (300, 74, 35, 50),
        "mosei-bert": (768, 74, 35, 50), "mmsa-mosi": (768, 5, 20, 50), "mmsa-mosei": (768, 74, 35, 50)}


@pytest.mark.parametrize("args, kwargs, message", [
    (("mimic", "mosi-large"), {}, "unknown preset 'mosi-large'"),
    (("bert", "mosi"), {}, "unknown model 'bert'"),
    (("mimic", "mosi"), {"hiden": 3}, r"unknown mimic config field\(s\) \['hiden'\]"),
    (("mimic", "mosi"), {"drop_modalities": ("smell",)}, "unknown modality"),
    (("mimic", "mosi"), {"fusion_head": "cuda"}, "fusion_head must be"),
])
def test_bad_config(args, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_config(*args, **kwargs)


@pytest.mark.parametrize("name", ["mimic", "misa"])
def test_dict_round_trip_and_digest(name):
    config = make_config(name, "mosei", out_dim=3)
    again = config_from_dict(name, config.to_dict())
    assert again == config and again.digest() == config.digest()
    assert make_config(name, "mosi").digest() != config.digest()


# Values a hand-edited checkpoint JSON may hold: each refused, naming the field, what it expects
# and what it found. bool is an int subclass: `true` must not pass for a size.
@pytest.mark.parametrize("name, field, value, message", [
    ("mimic", "lstm_hidden", -32, r"lstm_hidden: expected a positive integer, found -32 \(int\)"),
    ("mimic", "lstm_hidden", 0, r"lstm_hidden: expected a positive integer, found 0 \(int\)"),
    ("mimic", "lstm_hidden", "32", r"lstm_hidden: expected a positive integer, found '32' \(str\)"),
    ("mimic", "lstm_hidden", True, r"lstm_hidden: expected a positive integer, found True \(bool\)"),
    ("mimic", "lstm_hidden", 32.0, r"lstm_hidden: expected a positive integer, found 32.0 \(float\)"),
    ("mimic", "text_dim", None, r"text_dim: expected a positive integer, found None \(NoneType\)"),
    ("mimic", "out_dim", False, r"out_dim: expected a positive integer, found False \(bool\)"),
    ("mimic", "preset", "nopreset", r"unknown preset 'nopreset': expected one of mosi, "),
    ("mimic", "preset", 1, r"preset: expected a string, found 1 \(int\)"),
    ("mimic", "dropout", 1.5, r"dropout: expected a probability in \[0, 1\), found 1.5"),
    ("mimic", "dropout", 1.0, r"dropout: expected a probability in \[0, 1\), found 1.0"),  # the edge: all dropped
    ("misa", "dropout", 1, r"dropout: expected a probability in \[0, 1\), found 1"),
    ("mimic", "temperature", 1e-300 * 0, r"temperature: expected a number > 0, found 0.0"),
    ("mimic", "bottleneck", 15, r"bottleneck must be even \(2×2×2 max-pool\), got 15"),
    ("mimic", "d_model", 63, r"d_model \(63\) must be 2 × lstm_hidden \(32\)"),
    ("mimic", "dropout", -0.1, r"dropout: expected a finite number >= 0, found -0.1 \(float\)"),
    ("mimic", "dropout", float("nan"), r"dropout: expected a finite number >= 0, found nan \(float\)"),
    ("mimic", "temperature", 0, r"temperature: expected a number > 0, found 0"),
    ("mimic", "contrast_weight", "0.1", r"contrast_weight: expected a finite number >= 0, found '0.1' \(str\)"),
    ("mimic", "use_shared", 1, r"use_shared: expected true or false, found 1 \(int\)"),
    ("mimic", "drop_modalities", "text", r"drop_modalities: expected a list of strings, found 'text' \(str\)"),
    ("mimic", "drop_modalities", ["text", 3], r"drop_modalities: expected a list of strings, found \('text', 3\)"),
    ("mimic", "fusion_head", None, r"fusion_head: expected a string, found None"),
    ("misa", "n_heads", 3, r"hidden_size \(128\) must be a multiple of n_heads \(3\)"),
    ("misa", "cmd_moments", -5, r"cmd_moments: expected a positive integer, found -5"),
])
def test_config_values_are_checked(name, field, value, message):
    values = {**make_config(name).to_dict(), field: value}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(name, values)


@pytest.mark.parametrize("name, values, message", [
    (["mimic"], {}, r"unknown model \['mimic'\]"),
    ("mimic", [["lstm_hidden", 32]], r"expected the mimic config as an object of fields, found list"),
])
def test_config_containers_are_checked(name, values, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(name, values)


@pytest.mark.parametrize("field, value", [("dropout", 0.0), ("dropout", 0.999), ("temperature", 1e-6),
                                          ("lstm_hidden", 1), ("contrast_weight", 0)])
def test_config_values_at_the_edge_of_their_range_are_admitted(field, value):
    values = {**make_config("mimic").to_dict(), field: value}
    if field == "lstm_hidden":
        values["d_model"] = 2 * value
    assert getattr(config_from_dict("mimic", values), field) == value


def test_make_config_still_admits_what_it_did():
    """Ints for float fields, lists and tuples of modalities: the valid inputs of before."""
    config = make_config("mimic", "mosi", dropout=0, temperature=1, drop_modalities=["audio"])
    assert config.dropout == 0 and config.drop_modalities == ("audio",)
    assert config_from_dict("mimic", make_config("mimic").to_dict()) == make_config("mimic")


def test_digest_names_what_the_model_computes_not_how_it_runs():
    from mimic_edge.config import make_config

    base = make_config("mimic").digest()
    assert make_config("mimic", fusion_head="triton", encoder="triton").digest() == base
    assert make_config("mimic", lstm_hidden=16, d_model=32).digest() != base
    assert make_config("mimic", use_shared=False).digest() != base
    assert make_config("mimic", preset="mosi-bert").digest() != base
