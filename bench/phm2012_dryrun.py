"""Dry run of the challenge's scoring at full size: does ``phm2012`` fit the machine?

The product will be scored on the challenge's eleven test bearings, which are not in the
workplace. This writes a stand-in ``Test_set`` of the same shape: one folder per test bearing
(``Bearing1_3`` ... ``Bearing3_3``) holding as many ``acc_NNNNN.csv`` snapshots as the
challenge kept (PDF Appendix A.5; 13,959 in all), in the FEMTO CSV format, cut from the
learning bearings of the same operating condition (repeated where a condition has too few).
It then runs the scoring command on it twice, with a cold and a warm parse cache,

    python -m rul_core phm2012 --model BUNDLE --test-set STAND_IN --workspace WS

and prints the wall time and peak memory of each. The stand-in's snapshots are not those
bearings' snapshots, so the accuracies the command prints are meaningless and no score is
reported here: this measures time and memory, not accuracy. The stand-in has acc files only,
with two-digit exponents; the real Test_set's quirks (three-digit exponents, temp files) are
read in ``tests/test_data_real.py`` from the real copy of its first 40 Bearing1_4 snapshots.

    python -m rul_core train --model rc_lstm --data PATH/Learning_set ... --out /tmp/phm
    python bench/phm2012_dryrun.py --model /tmp/phm [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from phm2012 import BEARINGS, CONDITIONS, NPZ_DIR, machine_line, markdown

from rul_core.data.run import Condition, Run
from rul_core.data.synthetic import write_femto_run
from rul_core.phm2012 import TEST_BEARINGS

FS = 25600.0


def condition_pool(npz_dir: Path, condition: int) -> np.ndarray:
    """All snapshots (g) of the learning bearings of ``condition``, one after the other."""
    parts = []
    for b in BEARINGS:
        if b.startswith(f"Bearing{condition}_"):
            with np.load(npz_dir / f"Learning_set__{b}.npz", allow_pickle=False) as z:
                parts.append(z["acc"] / 1000.0)
    return np.concatenate(parts, axis=0)


def write_stand_in(out: Path, npz_dir: Path) -> int:
    """The stand-in Test_set under ``out``; returns the number of snapshot files."""
    total = 0
    pools: dict[int, np.ndarray] = {}
    for tb in TEST_BEARINGS:
        if tb.condition not in pools:  # each condition's bearings are read once
            pools[tb.condition] = condition_pool(npz_dir, tb.condition)
        pool = pools[tb.condition]
        idx = np.arange(tb.truncated_snapshots) % len(pool)
        rpm, load = CONDITIONS[tb.condition]
        run = Run(name=tb.name, snapshots=pool[idx], fs=FS,
                  channel_names=["horizontal", "vertical"], condition=Condition(rpm, load))
        write_femto_run(out / tb.name, run)
        total += len(idx)
        print(f"  {tb.name}: {len(idx)} snapshots", file=sys.stderr)
    return total


def timed_score(model: Path, test_set: Path, workspace: Path, table: Path) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one ``phm2012`` run in a child process (its table to ``table``)."""
    cmd = [sys.executable, "-m", "rul_core", "phm2012", "--model", str(model),
           "--test-set", str(test_set), "--workspace", str(workspace), "--out", str(table),
           "--quiet"]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=Path(__file__).parents[1])
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not the largest yet
        wall = time.perf_counter() - t0
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        if child.returncode != 0:
            sys.exit(f"phm2012 failed ({child.returncode}):\n{err.read()[-4000:]}")
        return wall, usage.ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="bundle directory to score with")
    ap.add_argument("--npz-dir", type=Path, default=NPZ_DIR)
    ap.add_argument("--keep", type=Path, default=None,
                    help="write the stand-in here and keep it, or reuse the one written there "
                         "before (default: a temporary folder, removed)")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="phm2012_dryrun_"))
    test_set, ws = root / "Test_set", root / "workspace"
    try:
        t0 = time.perf_counter()
        reused = test_set.is_dir()
        if not reused:
            write_stand_in(test_set, args.npz_dir)
        written = time.perf_counter() - t0
        files = list(test_set.rglob("acc_*.csv"))
        size_mb = sum(p.stat().st_size for p in files) / 1e6
        shutil.rmtree(ws, ignore_errors=True)  # the first run parses every file
        cold = timed_score(args.model, test_set, ws, root / "cold.csv")
        warm = timed_score(args.model, test_set, ws, root / "warm.csv")
        table = pd.read_csv(root / "warm.csv")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)

    print("# PHM 2012 scoring dry run: eleven stand-in test bearings at the challenge's lengths\n")
    print(machine_line() + "\n")
    how = "reused" if reused else f"written in {written:.0f} s"
    print(f"stand-in Test_set: {len(files)} snapshot files, {size_mb:.0f} MB, {how}; "
          f"model: {args.model}\n")
    print("| run | wall s | peak RSS MB |\n|---|---|---|")
    print(f"| cold parse cache | {cold[0]:.0f} | {cold[1]:.0f} |")
    print(f"| warm parse cache | {warm[0]:.0f} | {warm[1]:.0f} |")
    print("\nWhat the command estimated (seconds left after the last snapshot; the stand-in's "
          "snapshots are not those bearings', so its accuracies and score are left out):\n")
    cols = ["run", "snapshots", "elapsed_s", "last_rul", "estimate_rul_s"]
    print(markdown(table[cols].to_dict("records"), cols))


if __name__ == "__main__":
    main()
