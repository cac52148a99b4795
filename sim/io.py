"""Writing outputs safely: atomic files, folders whose files appear as a set, and folder locks.

* ``atomic_target``/``atomic_write_text``/``atomic_write_bytes``: one file appears complete
  under its final name, or not at all.
* ``OutputSet``: a run's files are written into a hidden staging folder beside the final one
  and appear together, by one rename, when the run commits; a failure removes the staging
  folder, so nothing partial is ever left under the final name.
* ``FolderLock``: an advisory lock (``flock``) held while a folder is written, so two runs never
  write one folder.  The lock file is hidden beside the folder and removed on release; a crashed
  run's lock is released by the kernel.
* ``reserve_folder``: a new, unused folder name, with ``-2``, ``-3`` ... appended when the name
  is taken (even by a run started in the same second with the same overrides).
"""
from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class OutputError(OSError):
    """Outputs that cannot be written: a one-line message naming the path and the reason."""


def describe_os_error(err: OSError, what: str = "cannot write") -> str:
    """One line for a file-system error: the path and the system's reason."""
    reason = err.strerror or str(err)
    if err.errno == errno.ENOTDIR:
        reason = "a part of the path is a file, not a folder"
    where = err.filename or ""
    return f"{what} {where}: {reason}".replace("  ", " ").strip()


@contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` and flush it to the disk (a full disk raises ENOSPC here)."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_target(path) as tmp:
        write_bytes(tmp, data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class FolderLock:
    """An exclusive advisory lock on ``folder`` (which need not exist), held by this process."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        self.path = folder.parent / f".{folder.name}.lock"
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # The holder before us may have removed the file after we opened it: then our
            # lock is on a dead inode, and we try again on the current file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                os.write(fd, f"{os.getpid()}\n".encode())
                return True
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self.fd)
        self.fd = None


def reserve_folder(wanted: Path, max_tries: int = 1000) -> tuple[Path, FolderLock]:
    """A folder name not in use, starting from ``wanted``, and the lock that holds it.

    A name is free when no folder of that name exists and no other process holds its lock;
    otherwise ``-2``, ``-3`` ... are appended.
    """
    wanted = Path(wanted)
    wanted.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, max_tries + 1):
        candidate = wanted if k == 1 else wanted.with_name(f"{wanted.name}-{k}")
        lock = FolderLock(candidate)
        if not lock.acquire():
            continue
        if candidate.exists():
            lock.release()
            continue
        return candidate, lock
    raise OutputError(errno.EEXIST, f"no free folder name after {max_tries} tries", str(wanted))


def has_results(folder: Path) -> bool:
    """Whether ``folder`` holds anything but Hydra's bookkeeping and a failure marker."""
    if not folder.is_dir():
        return folder.exists()
    return any(p.name not in (".hydra", "FAILED") for p in folder.iterdir())


class OutputSet:
    """The files of one run: written into a hidden staging folder, committed by one rename.

    ``staging`` is ``.<name>.partial-<pid>`` beside ``final``.  ``commit`` moves the staging
    folder to ``final`` (replacing an existing ``final`` only if ``replace``: the old folder is
    first renamed aside, then removed).  ``discard`` removes the staging folder.  The lock on
    ``final`` is held from ``begin`` to the end.
    """

    def __init__(self, final: str | Path, lock: FolderLock | None = None, replace: bool = False):
        self.final = Path(final)
        self.staging = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"
        self.lock = lock
        self.replace = replace

    def begin(self) -> Path:
        """Lock ``final`` and create the staging folder; returns the staging folder."""
        if self.lock is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.lock = FolderLock(self.final)
            if not self.lock.acquire():
                self.lock = None
                raise OutputError(errno.EBUSY, "another run is writing this folder", str(self.final))
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        return self.staging

    def commit(self, keep: tuple[str, ...] = ()) -> Path:
        """Move the staged files into place at once.  ``keep``: entries of an existing
        ``final`` carried over into the new set (e.g. Hydra's ``.hydra`` of a sweep job)."""
        old = None
        if self.final.exists():
            for name in keep:
                src, dst = self.final / name, self.staging / name
                if src.exists() and not dst.exists():
                    if src.is_dir():
                        shutil.copytree(src, dst)
                    else:
                        shutil.copy2(src, dst)
            if has_results(self.final) and not self.replace:
                raise OutputError(errno.EEXIST, "already holds a run's results", str(self.final))
            old = self.final.parent / f".{self.final.name}.old-{os.getpid()}"
            os.rename(self.final, old)
        os.rename(self.staging, self.final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.close()
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.close()

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    @contextmanager
    def writing(self, keep: tuple[str, ...] = ()) -> Iterator[Path]:
        """``with OutputSet(final).writing() as staging:`` write files; commit on success."""
        staging = self.begin()
        try:
            yield staging
        except BaseException:
            self.discard()
            raise
        self.commit(keep)


def merge_into(folder: Path) -> "_Merge":
    """Add a set of files to an existing folder (a sweep's comparison): they are written into a
    staging folder and moved in by renames once all are complete."""
    return _Merge(Path(folder))


class _Merge:
    def __init__(self, folder: Path):
        self.folder = folder

    @contextmanager
    def writing(self) -> Iterator[Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.folder))
        try:
            yield staging
            for item in sorted(staging.iterdir()):
                target = self.folder / item.name
                if target.is_dir() and not item.is_dir():
                    raise OutputError(errno.EISDIR, "is a folder", str(target))
                if target.is_dir():
                    shutil.rmtree(target)
                os.replace(item, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
