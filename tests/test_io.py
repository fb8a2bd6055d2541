"""Atomic writes: all or nothing under the final name, usual permissions."""
import os
import stat

import pytest

from mimic_edge.io import atomic_write, atomic_write_bytes


def test_interrupted_write_leaves_nothing(tmp_path):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "out.bin", write)
    assert list(tmp_path.iterdir()) == []


def test_replaces_and_respects_umask(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"old")
    old = os.umask(0o022)
    try:
        atomic_write_bytes(target, b"new")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


@pytest.mark.parametrize("fault", ["writer interrupted", "rename fails"])
def test_interrupted_write_over_an_existing_file_keeps_the_old_one(tmp_path, monkeypatch, fault):
    """The old file stays whole under its name, whether the writer dies half-way (Ctrl-C) or the
    final rename fails (a full disk, a crash): no mix of old and new, no temp file left."""
    target = tmp_path / "model.onnx"
    atomic_write_bytes(target, b"old artifact, complete")

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(b"new, half")
        if fault == "writer interrupted":
            raise KeyboardInterrupt

    if fault == "rename fails":
        def no_space(src, dst):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(KeyboardInterrupt if fault == "writer interrupted" else OSError):
        atomic_write(target, write)
    assert target.read_bytes() == b"old artifact, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_the_writer_lock_leaves_nothing_behind(tmp_path):
    from mimic_edge.io import LOCK_NAME, exclusive

    with exclusive(tmp_path / "new"):
        assert (tmp_path / "new" / LOCK_NAME).is_file()
    assert not (tmp_path / "new").exists()  # made for the lock, left empty: removed
    with exclusive(tmp_path / "kept"):
        (tmp_path / "kept" / "artifact").write_bytes(b"x")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["artifact"]


@pytest.mark.parametrize("where", ["write", "fsync", "temp file"])
def test_a_full_disk_is_a_write_error_and_the_old_file_stays(tmp_path, monkeypatch, where):
    import errno
    import tempfile

    from mimic_edge.errors import MimicEdgeError, WriteError

    path = tmp_path / "report.json"
    path.write_bytes(b"old")
    full = OSError(errno.ENOSPC, "No space left on device")

    def fail(*args, **kwargs):
        raise full

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", fail)
    elif where == "temp file":
        monkeypatch.setattr(tempfile, "mkstemp", fail)
    with pytest.raises(WriteError, match=rf"could not write {path}: No space left on device \(errno 28\)") as info:
        atomic_write(path, fail if where == "write" else lambda tmp: open(tmp, "wb").write(b"new"))
    assert isinstance(info.value, MimicEdgeError) and isinstance(info.value, OSError)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
