"""mimic_edge.bench.config: backends named from the registries, the checks, and no torch."""
import subprocess
import sys

import pytest

from mimic_edge.bench import BACKEND_NAMES, BACKENDS, BenchConfig, SETUPS, check_config, run_bench
from mimic_edge.config import MODEL_NAMES
from mimic_edge.errors import ConfigError
from mimic_edge.export.precisions import PRECISIONS


def test_backends_come_from_the_precision_registry():
    for key, entry in PRECISIONS.items():
        assert BACKENDS[f"ort-{key}"].artifact == key and BACKENDS[f"ort-{key}"].precision == entry.name
        assert (f"trt-{key}" in BACKENDS) == entry.tensorrt
    assert {"eager", "compile", "triton", "torch-tensorrt", "trt-fp32"} <= set(BACKEND_NAMES)
    assert all(b.setup in SETUPS for b in BACKENDS.values())
    assert BenchConfig().models == MODEL_NAMES


@pytest.mark.parametrize("change, message", [
    ({"batch_sizes": (0,)}, "batch sizes must be positive"),
    ({"backends": ("tpu",)}, "unknown backend 'tpu'"),
    ({"models": ("gpt",)}, "unknown model 'gpt'"),
    ({"presets": ("nope",)}, "unknown preset 'nope'"),
    ({"presets": ()}, "no preset given: expected one or more of mosi, mosi-bert"),
    ({"models": ()}, "no model given"),
    ({"backends": ()}, "no backend given"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"threads": 0}, "threads must be >= 1"),
])
def test_bad_config(change, message):
    with pytest.raises(ConfigError, match=message):
        check_config(BenchConfig(**change))
    with pytest.raises(ConfigError, match=message):  # run_bench checks before building anything
        run_bench(BenchConfig(**change))


def test_names_and_checks_import_no_torch():
    code = ("import sys; from mimic_edge.bench import BACKEND_NAMES, BenchConfig, check_config; "
            "check_config(BenchConfig()); assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
