"""Safe extraction of uploaded ``.zip`` / ``.tar.gz`` / ``.tgz`` / ``.tar`` archives.

Every member is checked before a byte is written, and sizes are counted again while
streaming (headers can lie):

- names: no absolute paths, drive letters or ``..`` components (zip-slip), no empty names;
- kinds: regular files and folders only (no symlinks, hard links, devices, FIFOs);
  encrypted zip members are refused;
- limits (:class:`rul_core.config.ArchiveLimits`): member count, per-file size, total
  unpacked size, and the compression ratio (unpacked / packed) of the whole archive and of
  each member larger than 1 MiB, against zip bombs;
- duplicates: a member that would overwrite an earlier one is refused.

Any violation raises :class:`ArchiveError` naming the archive and the member. Damaged data
(a zip member failing its CRC or decompression, a tarball cut short or corrupt part-way) raises
too, unless the caller passes a ``damaged`` list: then that member (for a tarball, the rest of
the stream, which cannot be read past the damage) is left out and recorded there as
``(member, reason)``, and the rest is extracted; an archive yielding no file still raises.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from rul_core.config import ArchiveLimits
from rul_core.data.natural import is_utf8_name, printable_name
from rul_core.errors import ArchiveError

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
RATIO_MIN_MEMBER_BYTES = 1024**2
CHUNK = 1024**2
#: What a damaged member's data raises while it is read (not the safety checks).
_DATA_ERRORS = (zipfile.BadZipFile, tarfile.TarError, zlib.error, OSError, EOFError, ValueError,
                NotImplementedError)
Damaged = list[tuple[str, str]]


def is_archive(path: str | Path) -> bool:
    """True when ``path`` is a file whose name ends like a supported archive."""
    p = Path(path)
    return p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES)


def archive_stem(path: str | Path) -> str:
    """The archive's name without its archive suffix (``runs.tar.gz`` -> ``runs``)."""
    name = Path(path).name
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def safe_member_path(archive: Path, name: str, is_dir: bool = False) -> PurePosixPath:
    """The member's relative path, or ArchiveError if it could land outside the target.

    A folder entry for the archive's root (``./``, as ``tar -C dir -czf x.tgz .`` writes)
    is the empty path.
    """
    if not is_utf8_name(name):
        raise ArchiveError(f"{archive}: member {printable_name(name)!r}: expected a UTF-8 file "
                           f"name, found bytes that are not UTF-8 (rename it and archive again)")
    normalised = name.replace("\\", "/")
    if not normalised or normalised.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveError(f"{archive}: member {name!r}: expected a relative path, found an "
                           f"absolute one")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ArchiveError(f"{archive}: member {name!r}: expected a path inside the archive, "
                           f"found '..' (path traversal)")
    if not parts:
        if is_dir:
            return PurePosixPath()
        raise ArchiveError(f"{archive}: member {name!r}: expected a file name, found none")
    return PurePosixPath(*parts)


class _Budget:
    """Running totals checked against the limits."""

    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.archive = archive
        self.limits = limits
        self.members = 0
        self.total = 0
        self.packed = max(archive.stat().st_size, 1)

    def add_member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_files:
            raise ArchiveError(f"{self.archive}: member {name!r}: expected at most "
                               f"{self.limits.max_files} members, found more")

    def check_declared(self, name: str, size: int, packed: int | None) -> None:
        lim = self.limits
        if size > lim.max_file_bytes:
            raise ArchiveError(f"{self.archive}: member {name!r}: expected at most "
                               f"{lim.max_file_bytes} bytes per file, found {size}")
        if packed is not None and size >= RATIO_MIN_MEMBER_BYTES and size > lim.max_ratio * max(
            packed, 1
        ):
            raise ArchiveError(f"{self.archive}: member {name!r}: expected a compression ratio "
                               f"of at most {lim.max_ratio:g}, found {size / max(packed, 1):.0f} "
                               f"(zip bomb?)")

    def add_bytes(self, name: str, n: int, written: int) -> None:
        lim = self.limits
        self.total += n
        if written > lim.max_file_bytes:
            raise ArchiveError(f"{self.archive}: member {name!r}: expected at most "
                               f"{lim.max_file_bytes} bytes per file, found more")
        if self.total > lim.max_total_bytes:
            raise ArchiveError(f"{self.archive}: member {name!r}: expected at most "
                               f"{lim.max_total_bytes} bytes unpacked in total, found more")
        if self.total >= RATIO_MIN_MEMBER_BYTES and self.total > lim.max_ratio * self.packed:
            raise ArchiveError(f"{self.archive}: member {name!r}: expected a compression ratio "
                               f"of at most {lim.max_ratio:g} for the archive, found more "
                               f"(zip bomb?)")


def _write_member(
    source: BinaryIO, target: Path, name: str, declared: int | None, budget: _Budget
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        out = open(target, "xb")  # noqa: SIM115 - closed below
    except FileExistsError:
        raise ArchiveError(f"{budget.archive}: member {name!r}: expected unique member names, "
                           f"found a duplicate") from None
    written = 0
    with out:
        while True:
            block = source.read(CHUNK)
            if not block:
                break
            written += len(block)
            budget.add_bytes(name, len(block), written)
            out.write(block)
    if declared is not None and written != declared:
        raise ArchiveError(f"{budget.archive}: member {name!r}: expected {declared} bytes as "
                           f"its header says, found {written}")


def _extract_zip(archive: Path, dest: Path, limits: ArchiveLimits,
                 damaged: Damaged | None = None) -> None:
    budget = _Budget(archive, limits)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArchiveError(f"{archive}: expected a valid zip archive, found a corrupt one "
                           f"({exc})") from None
    with zf:
        infos = zf.infolist()
        for info in infos:  # check every header before writing anything
            budget.add_member(info.filename)
            safe_member_path(archive, info.filename, info.is_dir())
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                what = "a symbolic link" if kind == stat.S_IFLNK else "a special file"
                raise ArchiveError(f"{archive}: member {info.filename!r}: expected a regular "
                                   f"file or folder, found {what}")
            if info.flag_bits & 0x1:
                raise ArchiveError(f"{archive}: member {info.filename!r}: expected an "
                                   f"unencrypted member, found an encrypted one")
            if not info.is_dir():
                budget.check_declared(info.filename, info.file_size, info.compress_size)
        declared_total = sum(i.file_size for i in infos)
        if declared_total > limits.max_total_bytes:
            raise ArchiveError(f"{archive}: expected at most {limits.max_total_bytes} bytes "
                               f"unpacked in total, found {declared_total} declared")
        for info in infos:
            rel = safe_member_path(archive, info.filename, info.is_dir())
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            try:
                with zf.open(info) as source:
                    _write_member(source, target, info.filename, info.file_size, budget)
            except ArchiveError:
                raise
            except _DATA_ERRORS as exc:
                why = f"expected readable data, found a corrupt member ({exc})"
                if damaged is None:
                    raise ArchiveError(f"{archive}: member {info.filename!r}: {why}") from None
                target.unlink(missing_ok=True)
                damaged.append((info.filename, why))
        if damaged and len(damaged) == sum(not i.is_dir() for i in infos):
            raise ArchiveError(f"{archive}: expected at least one readable member, found every "
                               f"one corrupt (first: {damaged[0][0]!r}: {damaged[0][1]})")


def _extract_tar(archive: Path, dest: Path, limits: ArchiveLimits,
                 damaged: Damaged | None = None) -> None:
    budget = _Budget(archive, limits)
    written = 0  # complete files
    current: tuple[str, Path] | None = None  # the member being written
    try:
        tf = tarfile.open(archive, mode="r|*")  # noqa: SIM115 - streaming: one pass, headers checked first
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"{archive}: expected a valid tar archive, found a corrupt one "
                           f"({exc})") from None
    try:
        with tf:
            for member in tf:
                budget.add_member(member.name)
                rel = safe_member_path(archive, member.name, member.isdir())
                if member.issym() or member.islnk():
                    kind = "a symbolic link" if member.issym() else "a hard link"
                    raise ArchiveError(f"{archive}: member {member.name!r}: expected a regular "
                                       f"file or folder, found {kind}")
                if not (member.isfile() or member.isdir()):
                    raise ArchiveError(f"{archive}: member {member.name!r}: expected a regular "
                                       f"file or folder, found a device or special file")
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                budget.check_declared(member.name, member.size, None)
                source = tf.extractfile(member)
                if source is None:
                    raise ArchiveError(f"{archive}: member {member.name!r}: expected file data, "
                                       f"found none")
                current = (member.name, target)
                _write_member(source, target, member.name, member.size, budget)
                current = None
                written += 1
        if budget.members == 0:
            raise ArchiveError(f"{archive}: expected at least one member, found an empty or "
                               f"truncated (corrupt) archive")
    except ArchiveError:
        raise
    except _DATA_ERRORS as exc:
        if damaged is None or written == 0:
            raise ArchiveError(f"{archive}: expected a valid tar archive, found a corrupt one "
                               f"({exc})") from None
        name = "the rest of the archive"
        if current is not None:
            current[1].unlink(missing_ok=True)
            name = current[0]
        damaged.append((name, f"expected a complete tar archive, found it corrupt or cut short "
                              f"here ({exc}); the {written} member(s) before were extracted, "
                              f"none after could be read"))


def extract_archive(archive: str | Path, dest: str | Path, limits: ArchiveLimits | None = None,
                    damaged: Damaged | None = None) -> Path:
    """Extract ``archive`` into the existing folder ``dest`` with every check; returns dest.
    ``damaged``: collect damaged members there instead of raising (see the module doc)."""
    archive = Path(archive)
    dest = Path(dest)
    limits = limits or ArchiveLimits()
    name = archive.name.lower()
    if name.endswith(".zip"):
        _extract_zip(archive, dest, limits, damaged)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        _extract_tar(archive, dest, limits, damaged)
    else:
        raise ArchiveError(f"{archive}: expected a .zip, .tar.gz, .tgz or .tar archive")
    return dest


@contextmanager
def extracted(archive: str | Path, limits: ArchiveLimits | None = None,
              damaged: Damaged | None = None) -> Iterator[Path]:
    """Extract into a fresh temporary folder, yield it, and remove it afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="rul_archive_"))
    try:
        extract_archive(archive, tmp, limits, damaged)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
