"""Synthetic data: layout, determinism, labels; MMSA loaders: round trip, bad files, unsafe pickles."""
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mimic_edge.config import MODALITIES, PRESETS
from mimic_edge.data import SPLITS, batches, load_dataset, load_mmsa, save_npz, synthetic
from mimic_edge.errors import ConfigError, DataError


@pytest.mark.parametrize("preset", list(PRESETS))
def test_synthetic_layout_matches_preset(preset):
    p = PRESETS[preset]
    data = synthetic(preset, n=(5, 3, 4), seed=1)
    assert list(data) == list(SPLITS)
    dims = {"text": p.text_dim, "audio": p.audio_dim, "vision": p.vision_dim}
    for split, size in zip(SPLITS, (5, 3, 4)):
        s = data[split]
        assert set(s) == {"text", "audio", "vision", "regression_labels", "id"}
        for m in MODALITIES:
            assert s[m].shape == (size, p.seq_len, dims[m]) and s[m].dtype == np.float32
        assert s["regression_labels"].shape == (size,) and s["regression_labels"].dtype == np.float32
        assert s["id"].shape == (size,) and len(set(s["id"])) == size


def test_synthetic_is_deterministic_by_seed():
    a, b, c = (synthetic(n=30, seed=s, seq_len=6) for s in (0, 0, 1))
    for split in SPLITS:
        for key in a[split]:
            np.testing.assert_array_equal(a[split][key], b[split][key])
    assert not np.array_equal(a["train"]["text"], c["train"]["text"])


def test_synthetic_total_size_uses_mosi_proportions():
    data = synthetic(n=2199, seq_len=2)
    assert [len(data[s]["id"]) for s in SPLITS] == [1284, 229, 686]


def test_synthetic_labels_are_mosi_like():
    y = synthetic(n=2000, seq_len=2)["train"]["regression_labels"]
    assert y.min() >= -3 and y.max() <= 3
    np.testing.assert_allclose(y / 0.2, np.round(y / 0.2), atol=1e-4)  # multiples of 0.2
    assert 0.02 < np.mean(y == 0) < 0.2  # some exact zeros, so Non0 differs from Has0
    assert y.std() > 1.0


def _quadratic_probe_mae(train, test, modality):
    """Ridge regression of the label on one modality's time-pooled features and their squares."""
    def features(split):
        pooled = split[modality].mean(axis=1)
        return np.hstack([pooled, pooled ** 2, np.ones((len(pooled), 1))])
    x, y = features(train), train["regression_labels"]
    w = np.linalg.solve(x.T @ x + 1.0 * np.eye(x.shape[1]), x.T @ y)
    return np.mean(np.abs(features(test) @ w - test["regression_labels"]))


@pytest.fixture(scope="module")
def probe_data():
    return synthetic("mosi", n=(3000, 10, 1000), seq_len=8)


def test_no_single_modality_suffices(probe_data):
    """A probe that finds text's main effect finds nothing in audio or vision alone, and text alone
    stays far from what the three modalities together allow (about half the label's variance)."""
    data = probe_data
    baseline = np.mean(np.abs(data["test"]["regression_labels"] - data["train"]["regression_labels"].mean()))
    mae = {m: _quadratic_probe_mae(data["train"], data["test"], m) for m in MODALITIES}
    assert mae["audio"] > 0.97 * baseline and mae["vision"] > 0.97 * baseline, (mae, baseline)
    assert 0.55 * baseline < mae["text"] < 0.8 * baseline, (mae, baseline)


@pytest.mark.parametrize("n", [(0, 1, 1), (1, 2), 2])
def test_synthetic_rejects_empty_splits(n):
    with pytest.raises(ConfigError, match="at least 1 sample"):
        synthetic(n=n, seq_len=2)


# --- files -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small():
    return synthetic("mosi", n=(6, 3, 4), seed=3, seq_len=5)


def _mmsa_like(dataset):
    """What MMSA's pickles hold: extra keys, (N, 1) labels, object-dtype ids, -inf in audio, lengths."""
    raw = {}
    for split, s in dataset.items():
        audio = s["audio"].copy()
        audio[0, 0, :3] = -np.inf
        raw[split] = {**s, "audio": audio, "regression_labels": s["regression_labels"][:, None].astype(np.float64),
                      "id": s["id"].astype(object), "raw_text": np.array(["w"] * len(s["id"]), dtype=object),
                      "audio_lengths": np.full(len(s["id"]), 5), "vision_lengths": np.arange(len(s["id"])) % 5 + 1}
    return raw


@pytest.mark.parametrize("protocol, numpy_1_names", [(2, False), (2, True), (4, False), (5, False)])
def test_pickle_round_trip(tmp_path, small, protocol, numpy_1_names):
    path = tmp_path / "aligned_50.pkl"
    blob = pickle.dumps(_mmsa_like(small), protocol=protocol)
    if numpy_1_names:  # files written under numpy 1.x name numpy.core, not numpy._core
        blob = blob.replace(b"numpy._core.", b"numpy.core.")
        assert b"numpy.core.multiarray\n_reconstruct" in blob
    path.write_bytes(blob)
    loaded = load_mmsa(path, preset="mosi")
    assert list(loaded) == list(SPLITS)
    for split in SPLITS:
        got, want = loaded[split], small[split]
        for m in ("text", "vision"):
            assert got[m].dtype == np.float32
            np.testing.assert_array_equal(got[m], want[m])
        expected_audio = want["audio"].copy()
        expected_audio[0, 0, :3] = 0  # -inf → 0, as MMSA does
        np.testing.assert_array_equal(got["audio"], expected_audio)
        np.testing.assert_array_equal(got["regression_labels"], want["regression_labels"])
        assert got["regression_labels"].shape == (len(want["id"]),)
        assert got["id"].tolist() == want["id"].tolist()
        assert got["audio_lengths"].tolist() == [5] * len(want["id"])
        assert got["vision_lengths"].tolist() == [i % 5 + 1 for i in range(len(want["id"]))]


def test_npz_round_trip_and_partial_file(tmp_path, small):
    path = save_npz(tmp_path / "data.npz", {"test": small["test"]})
    loaded = load_mmsa(path, preset="mosi")
    assert list(loaded) == ["test"]
    for key, value in small["test"].items():
        np.testing.assert_array_equal(loaded["test"][key], value)
    assert list(tmp_path.iterdir()) == [path]  # no temp file left, no ".npz.npz"


def test_load_dataset_dispatches(tmp_path, small):
    path = save_npz(tmp_path / "data.npz", small)
    np.testing.assert_array_equal(load_dataset(path, "mosi")["train"]["text"], small["train"]["text"])
    generated = load_dataset("synthetic", "mmsa-mosi", n=(2, 2, 2), seed=4)
    assert generated["test"]["audio"].shape[2] == 5


class Exploit:
    """Unpickling this would create a marker file through os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("where", ["top", "inside a split"])
def test_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, small, where):
    marker = tmp_path / "pwned"
    payload = Exploit(marker)
    obj = payload if where == "top" else {"train": {**small["train"], "id": payload}}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(obj))
    pickle.loads(pickle.dumps(Exploit(tmp_path / "control")))  # the payload does work when unpickled freely
    assert (tmp_path / "control").exists()
    with pytest.raises(DataError, match=r"refused to load: the pickle needs (posix|os|nt)\.system.*nothing in the file was run"):
        load_mmsa(path)
    assert not marker.exists()


def test_pickle_with_foreign_class_is_refused(tmp_path):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": Path("x")}}))
    with pytest.raises(DataError, match="pathlib"):
        load_mmsa(path)


def test_missing_key(tmp_path, small):
    path = save_npz(tmp_path / "data.npz", {"train": {k: v for k, v in small["train"].items() if k != "vision"}})
    with pytest.raises(DataError, match=r"\[train\]: missing key\(s\) \['vision'\]"):
        load_mmsa(path)


def test_wrong_dims_name_the_preset_and_the_match(tmp_path):
    path = save_npz(tmp_path / "data.npz", synthetic("mmsa-mosi", n=(2, 2, 2), seq_len=3))
    with pytest.raises(DataError, match=r"\(text 768, audio 5, vision 20\) do not match preset 'mosi' "
                                        r"\(text 300, audio 74, vision 47\); preset\(s\) with these dims: mmsa-mosi"):
        load_mmsa(path, preset="mosi")


@pytest.mark.parametrize("change, message", [
    (lambda s: {**s, "audio": s["audio"][:, :, :, None]}, r"audio: expected a non-empty \(N, seq_len, dim\) array"),
    (lambda s: {**s, "id": s["id"][:-1]}, "same number of samples"),
    (lambda s: {**s, "regression_labels": s["regression_labels"][:-1]},
     r"regression_labels: expected shape \(4,\) or \(4, 1\), one score per sample, found \(3,\)"),
    # 4 samples, 2 x 2 labels: flattened they would count right and belong to the wrong samples
    (lambda s: {**s, "regression_labels": s["regression_labels"].reshape(2, 2)},
     r"regression_labels: expected shape \(4,\) or \(4, 1\), one score per sample, found \(2, 2\)"),
    (lambda s: {**s, "regression_labels": s["regression_labels"][None, :]}, r"found \(1, 4\)"),
    (lambda s: {**s, "regression_labels": s["regression_labels"][:, None, None]}, r"found \(4, 1, 1\)"),
    (lambda s: {**s, "vision": np.full_like(s["vision"], np.nan)}, "vision: found NaN"),
    (lambda s: {**s, "audio": np.full_like(s["audio"], np.inf)}, "audio: found NaN or Inf"),  # only -inf → 0
    (lambda s: {**s, "regression_labels": s["regression_labels"] * np.nan}, "regression_labels: found NaN"),
    (lambda s: {**s, "audio_lengths": np.zeros(len(s["id"]), int)}, r"audio_lengths: expected values in \[1, 5\]"),
])
def test_bad_split_contents(tmp_path, small, change, message):
    path = save_npz(tmp_path / "data.npz", {"test": change(small["test"])})
    with pytest.raises(DataError, match=message):
        load_mmsa(path)


def test_dims_must_agree_between_splits(tmp_path, small):
    other = synthetic("mosei", n=(2, 2, 2), seq_len=5)["test"]
    path = save_npz(tmp_path / "data.npz", {"train": small["train"], "test": other})
    with pytest.raises(DataError, match="vision feature dim differs between splits: 47 in train, 35 in test"):
        load_mmsa(path)


@pytest.mark.parametrize("name, content, message", [
    ("missing.pkl", None, "dataset not found"),
    ("data.csv", b"a,b", "expected a .pkl"),
    ("broken.pkl", b"\x80\x04not a pickle", "corrupt or foreign"),
    ("broken.npz", b"PK not a zip", "corrupt or foreign"),
    ("list.pkl", pickle.dumps([1, 2]), "expected a dict with splits"),
    ("nosplits.pkl", pickle.dumps({"training": {}}), r"found \['training'\]"),
])
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_mmsa(path)


def test_npz_with_object_arrays_is_refused(tmp_path, small):
    path = tmp_path / "obj.npz"
    np.savez(path, **{"test/text": small["test"]["text"], "test/id": small["test"]["id"].astype(object)})
    with pytest.raises(DataError, match="expected plain numeric or string arrays"):
        load_mmsa(path)


# --- batches ---------------------------------------------------------------------------------

def test_batches_cover_the_split_in_order_and_shuffled(small):
    import torch

    split = {**small["train"], "audio_lengths": np.arange(1, 7)}
    ordered = list(batches(split, 4))
    assert [len(b["target"]) for b in ordered] == [4, 2]
    torch.testing.assert_close(torch.cat([b["text"] for b in ordered]), torch.from_numpy(split["text"]))
    assert set(ordered[0]["lengths"]) == {"audio"}
    shuffled = list(batches(split, 4, shuffle_seed=1))
    order = np.argsort(torch.cat([b["lengths"]["audio"] for b in shuffled]).numpy())
    torch.testing.assert_close(torch.cat([b["target"] for b in shuffled])[order], torch.from_numpy(split["regression_labels"]))
    assert [b["lengths"] for b in batches(small["test"], 8)] == [None]


def test_numpy_side_does_not_import_torch(tmp_path):
    code = ("import sys, mimic_edge.data as d, mimic_edge.metrics as m; "
            "ds = d.synthetic(n=(2, 2, 2), seq_len=2); d.load_mmsa(d.save_npz(sys.argv[1], ds)); "
            "m.mosi_metrics([1.0, -1.0], [1.0, 1.0]); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.npz")], check=True)


# --- check_split: the gate of training, evaluation and export ----------------------------------

def test_check_split_labels(small):
    from mimic_edge.data import check_split

    dims = PRESETS["mosi"].dims
    split = small["train"]  # 6 samples
    assert check_split(split, dims, "train") == 6
    assert check_split({**split, "regression_labels": split["regression_labels"][:, None]}, dims, "train") == 6
    for shape in [(3, 2), (6, 2), (1, 6)]:
        labels = np.zeros(shape, np.float32)
        with pytest.raises(DataError, match=rf"train split: regression_labels: expected shape \(6,\) or \(6, 1\), "
                                            rf"one score per sample, found \({shape[0]}, {shape[1]}\)"):
            check_split({**split, "regression_labels": labels}, dims, "train")
    with pytest.raises(DataError, match=r"train split: regression_labels: found NaN or Inf values"):
        check_split({**split, "regression_labels": np.full(6, np.nan, np.float32)}, dims, "train")
    with pytest.raises(DataError, match=r"train split: regression_labels: expected numeric scores, found dtype <U1"):
        check_split({**split, "regression_labels": np.array(list("abcdef"))}, dims, "train")


def test_labels_off_the_mosi_scale_warn_once_per_split(tmp_path, small):
    import warnings

    from mimic_edge.data import DataWarning

    far = {**small["test"], "regression_labels": np.array([-30, 30, 0, 1], np.float32)}
    path = save_npz(tmp_path / "data.npz", {"train": small["train"], "test": far})
    with pytest.warns(DataWarning) as caught:
        load_mmsa(path)
    assert [str(w.message) for w in caught] == [
        f"{path}[test]: 2 of 4 regression_labels lie outside [-3, 3] (found [-30, 30]): "
        "expected MOSI/MOSEI sentiment scores; are the labels on another scale?"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # labels on the scale, -3 and 3 included: no warning
        edges = {**small["test"], "regression_labels": np.array([-3, 3, 0, 1], np.float32)}
        load_mmsa(save_npz(tmp_path / "ok.npz", {"test": edges}))


# Pickles written opcode by opcode (protocol 0): each names the callable under test as its first
# global, and each creates `marker` when a plain pickle.loads runs it.
def _payload(callable_name, marker, tmp_path):
    touch = f"open({str(marker)!r}, 'w').close()"
    if callable_name in ("eval", "exec"):
        return f"cbuiltins\n{callable_name}\n(S{touch!r}\ntR.".encode()
    if callable_name == "getattr":  # getattr(__import__('os'), 'system')('touch marker')
        return (f"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(S'os'\ntRS'system'\ntR"
                f"(S{('touch ' + str(marker))!r}\ntR.").encode()
    if callable_name == "__import__":  # importing a module runs its code
        module = f"pwned_{marker.name}"
        (tmp_path / f"{module}.py").write_text(touch + "\n")
        return f"cbuiltins\n__import__\n(S{module!r}\ntR.".encode()
    raise AssertionError(callable_name)


@pytest.mark.parametrize("callable_name", ["eval", "exec", "getattr", "__import__"])
def test_pickle_callables_that_run_code_are_refused_and_nothing_runs(tmp_path, monkeypatch, callable_name):
    monkeypatch.syspath_prepend(str(tmp_path))
    control = tmp_path / "control"
    pickle.loads(_payload(callable_name, control, tmp_path))  # loaded freely, the payload runs
    assert control.exists()
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_payload(callable_name, marker, tmp_path))
    with pytest.raises(DataError) as refused:
        load_mmsa(path)
    assert not marker.exists(), "the payload ran"
    assert re.search(rf"refused to load: the pickle needs builtins\.{callable_name}, but only numpy arrays and plain "
                     r"containers are admitted \(nothing in the file was run\)", str(refused.value)), refused.value


@pytest.mark.parametrize("key, value, message", [
    ("regression_labels", lambda s: np.array(["pos"] * len(s["regression_labels"])), "regression_labels: expected "
     "numeric scores, found dtype <U3"),
    ("text", lambda s: s["text"].astype(str), r"text: expected numeric features, found dtype <U"),
])
def test_string_arrays_in_a_dataset_are_one_data_error(tmp_path, small, key, value, message):
    path = tmp_path / "strings.npz"
    np.savez(path, **{f"test/{k}": (value(small["test"]) if k == key else v) for k, v in small["test"].items()})
    with pytest.raises(DataError, match=message):
        load_mmsa(path)


def test_a_dataset_header_claiming_more_than_the_file_holds_is_refused(tmp_path):
    import io
    import zipfile

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (400000, 100, 300)})
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as archive:
        archive.writestr("train/text.npy", buffer.getvalue() + b"\0" * 1024)
    with pytest.raises(DataError, match=r"train/text.npy: its header declares float32 \(400000, 100, 300\)"):
        load_mmsa(tmp_path / "big.npz")
