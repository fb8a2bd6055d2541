"""The validation gates themselves: an artifact off by what a gate exists to catch fails it."""
import pytest
import torch

from mimic_edge.config import MODALITIES
from mimic_edge.export.precisions import PRECISIONS
from mimic_edge.export.validate import validate_runner

INT8 = [key for key, entry in PRECISIONS.items() if entry.name == "int8"]  # every target


def torch_runner(model, offset):
    """A stand-in artifact: the PyTorch model's own scores, plus `offset`."""
    def run(inputs):
        with torch.no_grad():
            return model(*(torch.from_numpy(inputs[m]) for m in MODALITIES)).numpy() + offset
    return run


def max_abs_checks(report):
    return [c for c in report["checks"] if c["check"].endswith("max_abs")]


@pytest.mark.parametrize("key", INT8)
def test_int8_scores_off_by_half_fail_every_max_abs_check(exports, key):
    """Scores 0.5 off fail the INT8 max-abs gate on every parity case, whatever the other gates
    say: a threshold a hundred times too loose (0.1 → 10) fails this test."""
    model = exports.model("mimic")
    valid = {k: v[:32] for k, v in exports.data()["valid"].items()}
    exact = validate_runner(torch_runner(model, 0.0), PRECISIONS[key], model, valid, log=lambda _: None)
    off = validate_runner(torch_runner(model, 0.5), PRECISIONS[key], model, valid, log=lambda _: None)
    assert max_abs_checks(exact) and all(c["passed"] for c in max_abs_checks(exact))
    assert len(max_abs_checks(off)) == len(max_abs_checks(exact))
    for check in max_abs_checks(off):
        assert check["value"] == pytest.approx(0.5, abs=1e-6) and not check["passed"], check
    assert not off["passed"]


@pytest.mark.parametrize("key", list(PRECISIONS))
def test_every_max_abs_gate_sits_where_its_precision_says(exports, key):
    """Scores off by twice a precision's max_abs fail every max_abs check, by half of it pass
    them: a gate loosened or tightened twofold (fp32's 1e-4 to 5e-3, say) fails here."""
    model = exports.model("mimic")
    valid = {k: v[:32] for k, v in exports.data()["valid"].items()}
    bound = PRECISIONS[key].thresholds.max_abs
    over = validate_runner(torch_runner(model, 2 * bound), PRECISIONS[key], model, valid, log=lambda _: None)
    under = validate_runner(torch_runner(model, bound / 2), PRECISIONS[key], model, valid, log=lambda _: None)
    assert max_abs_checks(over) and not any(c["passed"] for c in max_abs_checks(over))
    assert all(c["passed"] for c in max_abs_checks(under))
