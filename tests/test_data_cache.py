"""The parsed-run cache: same data back, invalidated by changes, rebuilt when corrupt."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from rul_core.data import load_dataset
from rul_core.data.cache import RunCache


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    assert a.run_names == b.run_names
    for ra, rb in zip(a.runs, b.runs, strict=True):
        np.testing.assert_array_equal(ra.snapshots, rb.snapshots)
        np.testing.assert_array_equal(ra.timestamps, rb.timestamps)
        assert ra.source_paths == rb.source_paths and ra.condition == rb.condition
        assert ra.dataset == rb.dataset and ra.channel_names == rb.channel_names
    assert a.report.used == b.report.used and a.report.skipped == b.report.skipped


def test_cache_round_trip_and_invalidation(make_synth, tmp_path: Path) -> None:  # type: ignore
    root = make_synth("femto", n_bearings=1, temperature=True)
    folder = root / "Learning_set" / "Bearing1_1"
    (folder / "acc_00002.csv").write_text("1,2,3\n")  # a bad file: its reason is cached too
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache, read_temperature=True)
    entries = list((cache / "runs").glob("*.npz"))
    assert len(entries) == 1
    second = load_dataset(root, cache_dir=cache, read_temperature=True)
    _same(first, second)
    np.testing.assert_array_equal(first.runs[0].extra_channels["temperature"][1],
                                  second.runs[0].extra_channels["temperature"][1])
    # Without temperature the key differs (a second entry).
    load_dataset(root, cache_dir=cache)
    assert len(list((cache / "runs").glob("*.npz"))) == 2
    # A changed file is noticed.
    (folder / "acc_00002.csv").write_text((folder / "acc_00003.csv").read_text())
    third = load_dataset(root, cache_dir=cache, read_temperature=True)
    assert third.runs[0].n_snapshots == first.runs[0].n_snapshots + 1


def test_moved_folder_hits_by_content(make_synth, tmp_path: Path, monkeypatch) -> None:  # type: ignore
    root = make_synth("xjtu", n_bearings=1)
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    moved = tmp_path / "elsewhere"
    shutil.copytree(root, moved)

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("parsed again instead of using the cache")

    from rul_core.data import loader

    monkeypatch.setattr(loader.READERS["xjtu"], "read", boom)
    second = load_dataset(moved, cache_dir=cache)
    np.testing.assert_array_equal(first.runs[0].snapshots, second.runs[0].snapshots)
    assert second.runs[0].source_paths[0].startswith(str(moved))


def test_corrupt_cache_is_rebuilt(make_synth, tmp_path: Path) -> None:  # type: ignore
    root = make_synth("generic", n_bearings=1)
    cache = tmp_path / "cache"
    first = load_dataset(root, cache_dir=cache)
    [entry] = (cache / "runs").glob("*.npz")
    entry.write_bytes(b"garbage")
    second = load_dataset(root, cache_dir=cache)
    _same(first, second)
    assert RunCache(cache).load(entry.stem, root / "Bearing1_1") is not None  # rewritten
    assert not list((cache / "runs").glob("*.tmp"))
