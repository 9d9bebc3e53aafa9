"""Atomic, durable writes and the append-only line writer."""
from __future__ import annotations

import os

import pytest

from hdfm_bench.core.io import atomic_path, write_text


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    dest = tmp_path / "r.md"
    write_text(dest, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert dest.read_text() == "old" and os.listdir(tmp_path) == ["r.md"]


def test_atomic_write_gives_normal_permissions(tmp_path):
    dest = write_text(tmp_path / "new.md", "x")
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o666 & ~umask
