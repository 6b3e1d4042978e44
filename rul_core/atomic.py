"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``.

A reader (or a crash) never sees a half-written file: either the old content or the new.
A temporary left behind by a writer that was killed is removed by the next write of the same
target once it is older than :data:`STALE_AFTER_S`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rul_core.errors import InputError


def _read_umask() -> int:
    """The process umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status",
                                                         encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # once, at import, before any worker thread writes files
    os.umask(mask)
    return mask


_UMASK = _read_umask()

#: Age (seconds since the last change inside it) after which a temporary sibling of a target
#: counts as left behind by a dead writer and is removed by the next write of that target.
STALE_AFTER_S = 3600.0


def _umask_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask).

    The umask is read once: setting it to read it would change it, for a moment, for every
    thread of the process (the app writes files from several).
    """
    return 0o666 & ~_UMASK


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the file system cannot swap
        return False
    raise OSError(err, os.strerror(err), str(b))


def _fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created or renamed in it) to disk, where the system
    can (not on Windows, nor on some network file systems)."""
    with contextlib.suppress(OSError):
        _fsync_path(path)


def _temp_stem(name: str) -> str:
    """``name`` cut to at most 200 UTF-8 bytes (whole characters), so that ``.stem.XXXXXXXX.tmp``
    fits the usual 255-byte limit on a file name."""
    return name.encode()[:200].decode(errors="ignore")


def _newest_mtime(path: Path) -> float:
    """The latest modification time of ``path`` and, for a folder, of its direct entries."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for entry in os.scandir(path):
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest


def _sweep_stale(folder: Path, name: str) -> None:
    """Remove the temporaries of ``name`` (``.name.XXXXXXXX.tmp``/``.old``, as made here) in
    ``folder`` untouched for :data:`STALE_AFTER_S`: what a killed writer left. Errors are
    ignored (another process may be sweeping too)."""
    pattern = re.compile(re.escape(f".{_temp_stem(name)}.") + r"[a-z0-9_]{8}\.(?:tmp|old)")
    try:
        entries = [Path(e.path) for e in os.scandir(folder) if pattern.fullmatch(e.name)]
    except OSError:
        return
    now = time.time()
    for entry in entries:
        with contextlib.suppress(OSError):
            if now - _newest_mtime(entry) < STALE_AFTER_S:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


@contextlib.contextmanager
def _temp_beside(folder: Path, name: str) -> Iterator[Path]:
    """An empty temporary file in ``folder`` (created if missing), named after ``name``;
    removed on exit unless it was renamed or linked away first."""
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_stale(folder, name)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{_temp_stem(name)}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _seal(tmp: Path, durable: bool = True) -> None:
    """Give a finished temporary file the usual permissions (not ``mkstemp``'s 0600) and, if
    ``durable``, flush it to disk, so its content is there before a name points at it."""
    os.chmod(tmp, _umask_mode())
    if durable:
        _fsync_path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else vanishes.

    The new file gets the usual permissions. ``durable`` flushes it to disk before the rename
    (off for caches, which are rebuilt when lost).
    """
    target = Path(path)
    with _temp_beside(target.parent, target.name) as tmp:
        yield tmp
        _seal(tmp, durable)
        os.replace(tmp, target)
        if durable:
            _fsync_dir(target.parent)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="\n")
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_new(folder: str | Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` atomically to ``folder/stem{suffix}``, never replacing an existing file.

    A name already taken gets ``-2``, ``-3``, ... The final step is a hard link of the finished
    temporary file, which fails instead of overwriting if another writer took the name first.
    """
    folder = Path(folder)
    with _temp_beside(folder, stem) as tmp:
        tmp.write_bytes(data)
        _seal(tmp)
        for n in range(1, 10_000):
            target = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                os.link(tmp, target)
            except FileExistsError:
                continue
            except OSError:  # a file system without hard links: reserve the name, then replace
                try:
                    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                except FileExistsError:
                    continue
                os.replace(tmp, target)
            _fsync_dir(folder)
            return target
        raise FileExistsError(f"{folder}: no free name for {stem}{suffix}")


def check_replaceable(path: str | Path, owned: Callable[[str], bool], what: str) -> Path:
    """``path`` resolved, if :func:`atomic_dir` may replace it: nothing there, an empty folder
    or a folder of ``what`` (every entry's name passes ``owned``). Anything else raises
    InputError naming what is there, so a user's own folder is never swapped away."""
    target = Path(path).resolve()
    if not target.exists():
        return target
    if not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder of {what}; refusing to replace "
                         "it")
    foreign = sorted(entry.name for entry in target.iterdir() if not owned(entry.name))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise InputError(f"{target}: holds {foreign[0]!r}{more}, not only {what}; refusing to "
                         "replace it (name a new or empty folder)")
    return target


@contextlib.contextmanager
def _temp_dir_beside(target: Path) -> Iterator[Path]:
    """An empty temporary folder beside ``target`` (its parent created if missing), named
    after it; removed on exit unless renamed away first."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale(target.parent, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_temp_stem(target.name)}.", suffix=".tmp",
                                dir=target.parent))
    try:
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _seal_dir(tmp: Path) -> None:
    """Give a finished temporary folder the usual permissions and flush its files and
    entries to disk, so its content is there before a name points at it."""
    os.chmod(tmp, _umask_mode() | 0o111)
    for entry in tmp.iterdir():
        if entry.is_file():
            _fsync_path(entry)
    _fsync_dir(tmp)


#: The name after which :func:`write_new_dir` names its temporary folders (``.incoming.*``),
#: so that the next write into the same folder sweeps those a killed writer left.
_NEW_DIR_TEMP = "incoming"


def write_new_dir(folder: str | Path, stem: str, fill: Callable[[Path], object]) -> Path:
    """A new folder ``folder/stem`` written atomically: ``fill`` writes its files into an
    empty temporary folder, which then takes the name (``stem-2``, ``-3``, ... when another
    writer finished one of that name first; never replaced). A crash leaves no folder under
    such a name, only a hidden temporary that a later call sweeps once stale."""
    parent = Path(folder)
    with _temp_dir_beside(parent / _NEW_DIR_TEMP) as tmp:
        fill(tmp)
        _seal_dir(tmp)
        for n in range(1, 10_000):
            target = parent / (stem if n == 1 else f"{stem}-{n}")
            try:
                os.rename(tmp, target)  # replaces at most an empty folder
            except OSError:
                if target.exists() or target.is_symlink():
                    continue
                raise
            _fsync_dir(parent)
            return target
        raise FileExistsError(f"{parent}: no free name for {stem}")


@contextlib.contextmanager
def atomic_dir(path: str | Path, replace: bool = True) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it becomes ``path``.

    With ``replace=False`` a ``path`` that holds anything by then (another writer's folder)
    is left alone and :class:`FileExistsError` raised.

    An existing ``path`` is swapped with the new folder in one step where the system allows
    (Linux), so a reader always finds a complete folder there, old or new. Elsewhere the old
    folder is moved aside first and restored if the second rename fails, leaving a moment with
    no folder. On an error inside the block the temporary folder is removed and ``path`` is
    untouched.
    """
    target = Path(path)
    with _temp_dir_beside(target) as tmp:
        yield tmp
        _seal_dir(tmp)
        if not replace:
            try:
                os.rename(tmp, target)  # replaces at most an empty folder
            except OSError as exc:
                if target.exists():
                    raise FileExistsError(errno.EEXIST, "exists; not replaced",
                                          str(target)) from exc
                raise
        elif target.exists() and _exchange(tmp, target):
            pass  # tmp now holds the old folder, removed below
        elif target.exists():
            # an empty placeholder with a unique name; rename() may replace an empty folder
            parent = target.parent
            old = Path(tempfile.mkdtemp(prefix=f".{_temp_stem(target.name)}.", suffix=".old",
                                        dir=parent))
            os.replace(target, old)
            try:
                os.replace(tmp, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
        _fsync_dir(target.parent)
