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
