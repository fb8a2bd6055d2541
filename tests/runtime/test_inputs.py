"""Input files: .npz or a folder of .npy files, and the conversion every predictor applies."""
import numpy as np
import pytest
import torch

from mimic_edge.errors import InputError
from mimic_edge.runtime.inputs import prepare_inputs, read_inputs, write_inputs

DIMS = {"text": 3, "audio": 2, "vision": 4}


def arrays(batch=2):
    rng = np.random.default_rng(0)
    return {m: rng.standard_normal((batch, 5 + i, d)).astype(np.float32) for i, (m, d) in enumerate(DIMS.items())}


def test_folder_round_trip(tmp_path):
    x = arrays()
    write_inputs(tmp_path / "in", {m: a.astype(np.float64) for m, a in x.items()})  # written as float32
    got = read_inputs(tmp_path / "in")
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["audio.npy", "text.npy", "vision.npy"]
    for m in DIMS:
        assert got[m].dtype == np.float32 and got[m].flags.c_contiguous
        np.testing.assert_array_equal(got[m], x[m])


def test_npz(tmp_path):
    x = arrays()
    np.savez(tmp_path / "in.npz", **x, labels=np.zeros(2))
    got = read_inputs(tmp_path / "in.npz")
    assert sorted(got) == ["audio", "text", "vision"]
    for m in DIMS:
        np.testing.assert_array_equal(got[m], x[m])


def test_prepare_converts_torch_and_float64():
    x = arrays()
    out = prepare_inputs(torch.from_numpy(x["text"]).bfloat16(), x["audio"].astype(np.float64),
                         np.asfortranarray(x["vision"]), DIMS)
    assert all(a.dtype == np.float32 and a.flags.c_contiguous for a in out.values())
    np.testing.assert_allclose(out["text"], x["text"], rtol=2 ** -8)  # bfloat16: 8 significant bits
    np.testing.assert_array_equal(out["audio"], x["audio"])
    np.testing.assert_array_equal(out["vision"], x["vision"])


def test_prepare_checks_batch_range():
    x = arrays(batch=3)
    with pytest.raises(InputError, match=r"batch size 3 is outside the supported range \[1, 2\]"):
        prepare_inputs(x["text"], x["audio"], x["vision"], DIMS, batch_range=(1, 2))


@pytest.mark.parametrize("case, message", [
    ("missing.npz", r"input file not found: expected an .npz file or a folder with text.npy, audio.npy, vision.npy"),
    ("no_vision.npz", r"missing array\(s\) \['vision'\]: expected an .npz file with arrays .* found \['text', 'audio'\]"),
    ("single.npy", r"expected an .npz file with arrays .* found a single array of shape \(2, 3\)"),
    ("garbage.npz", r"expected an .npz file with arrays .* found an unreadable file"),
    ("random.npz", r"expected an .npz file with arrays .* found neither a zip archive \(.npz\) nor a .npy array"),
    ("folder_with_garbage", r"audio.npy: expected a .npy array, found neither a zip archive"),
    ("objects.npz", r"expected an .npz file with arrays .* found a corrupt file .*allow_pickle"),
    ("folder_without_audio", r"input file not found: expected .*folder_without_audio/audio.npy"),
])
def test_bad_input_files(tmp_path, case, message):
    path = tmp_path / case
    x = arrays()
    if case == "no_vision.npz":
        np.savez(path, text=x["text"], audio=x["audio"])
    elif case == "single.npy":
        np.save(path, np.zeros((2, 3)))
    elif case == "garbage.npz":
        path.write_bytes(b"PK\x03\x04 not really a zip file")
    elif case == "random.npz":  # np.load would call it pickled data
        path.write_bytes(bytes(range(7, 250)))
    elif case == "folder_with_garbage":
        write_inputs(path, x)
        (path / "audio.npy").write_bytes(b"not an array")
    elif case == "objects.npz":
        np.savez(path, text=np.array([{"a": 1}], dtype=object), audio=x["audio"], vision=x["vision"])
    elif case == "folder_without_audio":
        write_inputs(path, x)
        (path / "audio.npy").unlink()
    with pytest.raises(InputError, match=message):
        read_inputs(path)


def test_check_scores_passes_finite_scores_through():
    from mimic_edge.runtime.inputs import check_scores

    scores = np.array([[0.5], [-1.0]], np.float32)
    assert check_scores(scores, "m.onnx") is scores


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_scores_refuses_non_finite_scores(bad):
    from mimic_edge.errors import ArtifactError
    from mimic_edge.runtime.inputs import check_scores

    scores = np.zeros((4, 3), np.float32)
    scores[1, 2] = scores[3, 0] = scores[3, 1] = bad
    with pytest.raises(ArtifactError, match=r"m.onnx: produced NaN or Inf scores for 2 of 4 samples whose inputs are "
                                            r"finite: expected finite scores"):
        check_scores(scores, "m.onnx")


def test_an_unreadable_input_file_is_one_input_error(tmp_path, monkeypatch):
    from mimic_edge.runtime import inputs

    path = tmp_path / "samples.npz"
    path.write_bytes(b"PK\x03\x04")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(inputs, "open", denied, raising=False)
    with pytest.raises(InputError, match="samples.npz: expected an .npz file .*, found a file that cannot be read "
                                         r"\(Permission denied\)"):
        read_inputs(path)


def test_big_endian_float32_is_taken_like_native(tmp_path):
    """>f4 is float32 (a file written on a big-endian machine, or by hand): same values, native order."""
    x = arrays()
    out = prepare_inputs(*(x[m].astype(">f4") for m in DIMS), DIMS)
    for m in DIMS:
        assert out[m].dtype == np.float32 and out[m].dtype.isnative
        np.testing.assert_array_equal(out[m], x[m])


def crafted_npy(shape, data_bytes: int) -> bytes:
    """A .npy whose header declares `shape` float32 but holds `data_bytes` of data."""
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + b"\0" * data_bytes


@pytest.mark.parametrize("form", ["npz", "npy folder"])
def test_a_header_claiming_more_than_the_file_holds_is_refused_before_allocating(tmp_path, form):
    import zipfile

    bad = crafted_npy((400000, 100, 300), 1024)  # 48 GB declared, 1 KB there
    if form == "npz":
        path = tmp_path / "x.npz"
        with zipfile.ZipFile(path, "w") as archive:
            for m in DIMS:
                archive.writestr(f"{m}.npy", bad)
        where = r"x.npz: text.npy"
    else:
        path = tmp_path
        for m in DIMS:
            (tmp_path / f"{m}.npy").write_bytes(bad)
        where = r"text.npy"
    with pytest.raises(InputError, match=rf"{where}: its header declares float32 \(400000, 100, 300\) "
                                         r"\(48,000,000,000 bytes\), found 1,024 bytes of data"):
        read_inputs(path)
