"""Every file the platform writes appears whole or not at all, and OS errors become one-line messages.

Writers put the bytes under a unique temporary name in the target's own folder, then rename it into
place (atomic on POSIX): a reader never sees half a file, a killed writer leaves only a temporary
that the next sweep removes, and two writers of the same file never tear it (the last rename wins,
and both wrote the same content for the same partition).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_MARK = ".inflight-"
_WHAT_TO_DO = {
    errno.EACCES: "check the folder's permissions",
    errno.EPERM: "check the folder's permissions",
    errno.EROFS: "the file system is read-only; point MLOPS_HOME at a writable folder",
    errno.ENOSPC: "the disk is full; free space or point MLOPS_HOME at a larger disk",
    errno.EDQUOT: "the disk quota is exhausted; free space",
    errno.ENOENT: "the folder does not exist; create it or fix the path",
    errno.ENOTDIR: "a file stands where a folder is expected; move it away",
    errno.EEXIST: "a file stands where a folder is expected; move it away",
    errno.EISDIR: "a folder stands where a file is expected; move it away",
}


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a unique temporary path beside `target`; on success it is renamed over `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{TEMP_MARK}{uuid.uuid4().hex[:12]}-{target.name}")
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def atomic_copy(source: Path, target: Path) -> Path:
    """Copy `source` to `target` so that `target` is never seen half-written."""
    with atomic_path(target) as temporary:
        shutil.copyfile(source, temporary)
    return Path(target)


def sweep_temporaries(folder: Path, older_than_seconds: float = 3600.0) -> list[Path]:
    """Remove temporaries that dead writers left under `folder` (old enough that no live writer owns them)."""
    removed: list[Path] = []
    if not Path(folder).is_dir():
        return removed
    cutoff = time.time() - older_than_seconds
    for path in Path(folder).rglob(f"{TEMP_MARK}*"):
        with contextlib.suppress(OSError):
            if path.lstat().st_mtime < cutoff:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
    return removed


def describe_os_error(error: OSError) -> str:
    """One line naming the path and what to do, for an OSError a user can fix."""
    path = error.filename or "a file"
    reason = error.strerror or str(error)
    advice = _WHAT_TO_DO.get(error.errno or -1, "check the path and the disk")
    return f"{path}: {reason}; {advice}"
