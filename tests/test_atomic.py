"""Atomic writes: complete old or new content at every moment, usual permissions, no leftovers."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from rul_core import atomic


def test_atomic_path_replaces_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.txt"
    atomic.write_text(target, "one")
    atomic.write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    with pytest.raises(RuntimeError), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash while writing")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK


def test_the_umask_is_never_changed_to_read_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Setting the umask to read it would leak to files other threads create meanwhile."""
    calls: list[int] = []
    monkeypatch.setattr(atomic.os, "umask", lambda m: calls.append(m) or 0o022)
    for n in range(20):
        atomic.write_text(tmp_path / f"{n}.txt", "x")
    with atomic.atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
    assert calls == []


def test_atomic_dir_always_shows_a_complete_folder(tmp_path: Path) -> None:
    """A reader polling while the folder is replaced always finds its files, old or new."""
    if sys.platform != "linux":
        pytest.skip("the one-step swap needs Linux renameat2")
    target = tmp_path / "bundle"
    with atomic.atomic_dir(target) as d:
        (d / "card.json").write_text("0")
        (d / "model.keras").write_text("0")
    stop = threading.Event()
    seen: list[str] = []

    def read() -> None:  # each look resolves the path once, as a loader opening a file does
        while not stop.is_set():
            for name in ("card.json", "model.keras"):
                try:
                    if not (target / name).read_text():
                        seen.append(f"empty {name}")
                except FileNotFoundError:
                    seen.append(f"missing {name}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 150):
            with atomic.atomic_dir(target) as d:
                (d / "card.json").write_text(str(n))
                (d / "model.keras").write_text(str(n))
    finally:
        stop.set()
        reader.join()
    assert seen == []
    assert (target / "card.json").read_text() == "149"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no .old or .tmp left


def test_atomic_dir_without_the_swap_still_replaces(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "b"
    for n in range(2):
        with atomic.atomic_dir(target) as d:
            (d / "x").write_text(str(n))
    assert (target / "x").read_text() == "1"
    with pytest.raises(RuntimeError), atomic.atomic_dir(target) as d:
        (d / "x").write_text("half")
        raise RuntimeError("crash while writing")
    assert (target / "x").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_temporaries_left_by_a_killed_writer_are_swept(tmp_path: Path) -> None:
    """A writer killed mid-save (kill -9) leaves its temporary behind; the next save of the
    same target removes it once it is older than STALE_AFTER_S, and keeps a fresh one (it may
    belong to a live writer in another process)."""
    import os
    import tempfile
    import time

    old = time.time() - 2 * 86400  # two days: older than STALE_AFTER_S
    dead_dir = Path(tempfile.mkdtemp(prefix=".b.", suffix=".tmp", dir=tmp_path))
    (dead_dir / "model.keras").write_bytes(b"half")
    dead_file = Path(tempfile.mkstemp(prefix=".f.txt.", suffix=".tmp", dir=tmp_path)[1])
    for p in (dead_dir / "model.keras", dead_dir, dead_file):
        os.utime(p, (old, old))
    live_dir = Path(tempfile.mkdtemp(prefix=".b.", suffix=".tmp", dir=tmp_path))
    unrelated = tmp_path / ".notes.abcdefgh.tmp"  # not a temporary of these targets
    unrelated.write_text("keep")
    os.utime(unrelated, (old, old))

    with atomic.atomic_dir(tmp_path / "b") as d:
        (d / "card.json").write_text("{}")
    atomic.write_text(tmp_path / "f.txt", "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["b", "f.txt", live_dir.name, unrelated.name])


def test_names_are_flushed_to_disk_not_only_contents(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Durability after a power cut needs the folder entries on disk too: the new folder's
    file names before it is renamed into place, and the parent's entry after each rename."""
    synced: list[tuple[str, list[str]]] = []
    real = atomic._fsync_path

    def record(path: Path) -> None:
        p = Path(path)
        synced.append((p.name, sorted(c.name for c in p.iterdir()) if p.is_dir() else []))
        real(p)

    monkeypatch.setattr(atomic, "_fsync_path", record)
    atomic.write_text(tmp_path / "f.txt", "x")
    assert synced[-1] == (tmp_path.name, ["f.txt"])  # the parent, after the rename
    synced.clear()
    with atomic.atomic_dir(tmp_path / "b") as d:
        (d / "card.json").write_text("{}")
    temp_dirs = [entries for name, entries in synced if name.startswith(".b.")]
    assert temp_dirs == [["card.json"]]  # the new folder's entries, before the rename
    assert synced[-1] == (tmp_path.name, ["b", "f.txt"])
    synced.clear()
    atomic.write_new(tmp_path, "n", ".txt", b"x")
    assert synced[-1][0] == tmp_path.name and "n.txt" in synced[-1][1]


def test_a_target_name_near_the_length_limit_is_written(tmp_path: Path) -> None:
    """The temporary's name adds a prefix and suffix to the target's; a target name the file
    system accepts (up to 255 bytes) must not fail with 'File name too long'."""
    name = "é" * 120 + "x" * 10  # 250 bytes in UTF-8
    atomic.write_text(tmp_path / name, "x")
    with atomic.atomic_dir(tmp_path / f"{name}d") as d:
        (d / "card.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, f"{name}d"]


def test_write_new_dir_names_a_complete_folder_only(tmp_path: Path) -> None:
    """write_new_dir: the folder appears under its name only once filled, takes the next free
    name (never replacing another writer's folder), leaves nothing when filling fails, and
    sweeps the temporaries a killed writer left."""
    import os
    import tempfile
    import time

    def fill(folder: Path) -> None:
        assert folder.parent == tmp_path and folder.name.startswith(".incoming.")
        assert not (tmp_path / "cv").exists() or (tmp_path / "cv" / "a.csv").is_file()
        (folder / "a.csv").write_text("x")

    old = time.time() - 2 * 86400
    dead = Path(tempfile.mkdtemp(prefix=".incoming.", suffix=".tmp", dir=tmp_path))
    (dead / "a.csv").write_text("half")
    for p in (dead / "a.csv", dead):
        os.utime(p, (old, old))
    assert atomic.write_new_dir(tmp_path, "cv", fill) == tmp_path / "cv"
    assert atomic.write_new_dir(tmp_path, "cv", fill) == tmp_path / "cv-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv", "cv-2"]  # the dead one swept

    def crash(folder: Path) -> None:
        (folder / "a.csv").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.write_new_dir(tmp_path, "cv", crash)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cv", "cv-2"]
    assert (tmp_path / "cv" / "a.csv").read_text() == "x"
