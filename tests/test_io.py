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
