"""File helpers: atomic writes (a reader sees the old file or the new one, never half of
one), checksums, and expanding command-line inputs (files, folders, globs) into paths."""

from __future__ import annotations

import errno
import glob
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp/mkdtemp create 0600/0700 entries; finished files should get the usual
# permissions (what open() would give under the process umask), or a model installed by
# one user is unreadable to the service that runs it.
UMASK = _umask()
FILE_MODE = 0o666 & ~UMASK
DIR_MODE = 0o777 & ~UMASK


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` if the block succeeds.

    The temporary file lives in the same directory so the final `os.replace` is atomic
    on POSIX filesystems. On failure the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        _name_the_file(e, path)
        raise
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    except OSError as e:
        _name_the_file(e, path)
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


# A full or read-only disk: the machine's state, not a bug (`vq.cli.app` prints one line).
DISK_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _name_the_file(e: OSError, path: Path) -> None:
    """A disk error names the file being written, not its hidden temporary twin (or
    nothing, as a failed write() does); any other error is left as it is."""
    if e.errno in DISK_ERRORS:
        e.filename = str(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def is_url(path: str) -> bool:
    """A network source (rtmp://, https://, ...), not a local path (file:// is local)."""
    return "://" in str(path) and not str(path).startswith("file://")


def expand_inputs(items: list[str], suffixes: frozenset[str]) -> list[Path]:
    """Files are kept as given (even with an odd suffix: the reader reports them);
    directories are walked for `suffixes`; anything else is treated as a glob. A pattern
    that matches nothing is kept, so the job reports it as missing instead of skipping it.
    URLs (``https://...``, ``rtmp://...``) pass through as text: `Path` would fold their
    double slash."""
    out: list = []
    for item in items:
        if is_url(item):
            out.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes and p.is_file()))
        elif path.exists() or not glob.has_magic(item):
            out.append(path)
        else:
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True) if Path(m).is_file())
            out.extend(matches or [path])
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]
