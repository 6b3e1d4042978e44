"""Write every N-th snapshot of the six FEMTO learning bearings to a smaller set of npz files.

The full files (72 MB) do not fit where only a few megabytes travel, e.g. to a GPU machine.
Each subset file keeps ``acc`` for the snapshots counted back from failure in steps of
``--stride`` and their original numbers in ``snapshot``, so ``bench/phm2012.py --npz-dir DIR
--stride K`` (K a multiple of the subset's stride) loads the same runs as from the full files.

    python bench/femto_subset.py --stride 6 --out .gpu_data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phm2012 import BEARINGS, NPZ_DIR, snapshot_numbers

from rul_core.atomic import atomic_path
from rul_core.data.run import every_nth_from_last


def write_subset(bearing: str, stride: int, out_dir: Path, src_dir: Path = NPZ_DIR) -> Path:
    """Every ``stride``-th snapshot of ``bearing`` (the failure snapshot kept) to ``out_dir``."""
    name = f"Learning_set__{bearing}.npz"
    with np.load(src_dir / name, allow_pickle=False) as z:
        number = snapshot_numbers(z)
        keep = every_nth_from_last(number, stride)
        acc, number = z["acc"][keep], number[keep]
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / name) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, acc=acc, snapshot=number)
    return out_dir / name


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stride", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--src", type=Path, default=NPZ_DIR)
    p.add_argument("--bearings", nargs="+", default=list(BEARINGS))
    args = p.parse_args(argv)
    for b in args.bearings:
        path = write_subset(b, args.stride, args.out, args.src)
        print(f"{path}: {path.stat().st_size / 2**20:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
