"""Time opening FEMTO Learning_set/Bearing1_1 (2803 CSV files): first load and cached load.

    python bench/load_femto.py [--out DIR] [--bearing Bearing1_1]

Restores the bearing's original CSV layout from ``../shared/data/real/femto_npz`` with
``restore_femto.py`` (into a temporary folder, or ``--out`` to reuse it between runs), loads it
without a cache, then with an empty cache (first open, writes the cache), then again (cached
open), and checks the values equal ``acc / 1000`` from the npz.
Targets (issue 2): first open < 20 s, cached open < 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def main() -> int:
    """Restore, time, verify; exit 0 when the targets are met and the values are equal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="restore here (kept, reused when present)")
    parser.add_argument("--bearing", default="Bearing1_1")
    args = parser.parse_args()
    from rul_core.data import load_dataset

    npz_path = REAL / "femto_npz" / f"Learning_set__{args.bearing}.npz"
    if not npz_path.is_file():
        print(f"real data not found: {npz_path}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench_femto_"))
    try:
        return _bench(args, npz_path, work, load_dataset)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, npz_path: Path, work: Path, load_dataset) -> int:  # type: ignore[no-untyped-def]
    out = args.out or work / "restored"
    folder = out / "Learning_set" / args.bearing
    if not folder.is_dir():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(REAL / "restore_femto.py"), str(out), str(npz_path)],
                       check=True, stdout=subprocess.DEVNULL)
        print(f"restored {args.bearing} in {time.perf_counter() - t0:.1f} s -> {folder}")
    n_files = len(list(folder.glob("acc_*.csv")))
    size_mb = sum(f.stat().st_size for f in folder.glob("acc_*.csv")) / 1e6
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
          f"Python {platform.python_version()}")
    print(f"bearing: {args.bearing}, {n_files} acc files, {size_mb:.0f} MB")

    t0 = time.perf_counter()
    dataset = load_dataset(folder)
    no_cache = time.perf_counter() - t0
    cache = work / "cache"
    t0 = time.perf_counter()
    load_dataset(folder, cache_dir=cache)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    cached = load_dataset(folder, cache_dir=cache)
    second = time.perf_counter() - t0

    expected = (np.load(npz_path)["acc"] / 1000).astype(np.float32)
    equal = np.array_equal(dataset.runs[0].snapshots, expected) and np.array_equal(
        cached.runs[0].snapshots, expected
    )
    print(f"parse without cache:        {no_cache:6.2f} s  ({n_files / no_cache:.0f} files/s)")
    print(f"first open (writes cache):  {first:6.2f} s  (target < 20 s)")
    print(f"cached open:                {second:6.2f} s  (target < 1 s)")
    print(f"values equal npz acc/1000:  {equal}")
    return 0 if equal and first < 20 and second < 1 else 1


if __name__ == "__main__":
    raise SystemExit(main())
