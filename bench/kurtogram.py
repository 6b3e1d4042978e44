"""Time the fast kurtogram (rul_core.signal.kurtogram) on a real FEMTO snapshot and on an
XJTU-SY-sized one.

    python bench/kurtogram.py [--bearing Bearing1_1] [--repeat 20]

Reads ``../shared/data/real/femto_npz/Learning_set__<bearing>.npz`` (``acc / 1000`` g, as the
loader gives) and times, on the horizontal channel, the best of ``--repeat`` calls of:

- the kurtogram of its last (failed) snapshot, 2560 samples, levels 0-4 (target: well under
  100 ms), and the band it suggests;
- the mean kurtogram of its last 5 snapshots (the Data page's other choice);
- the kurtogram of the last snapshot of a synthetic XJTU-SY-sized bearing (32768 samples,
  levels 0-8; target: under 0.5 s).

The first call of the process (which builds the filters) is timed apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from timing import best, machine_line

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def main() -> int:
    """Print the timings; exit 1 when the real data is missing or a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bearing", default="Bearing1_1")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from rul_core.data.synthetic import synth_run
    from rul_core.signal import kurtogram as kgm

    print(machine_line() + f"; best of {args.repeat}")
    ok = True
    npz_path = REAL / "femto_npz" / f"Learning_set__{args.bearing}.npz"
    if not npz_path.is_file():
        print(f"real data not found: {npz_path}", file=sys.stderr)
        ok = False
    else:
        acc = np.load(npz_path)["acc"][:, :, 0] / 1000.0
        last = acc[-1]
        t0 = time.perf_counter()
        kgm.kurtogram(last, 25600.0)
        first = time.perf_counter() - t0
        took, (band, kg, _) = best(lambda: kgm.suggest_band(last, 25600.0), args.repeat)
        ok &= took < 0.1
        print(f"FEMTO {args.bearing}, last of {acc.shape[0]} snapshots (2560 samples, levels "
              f"0-{kg.max_level}): {took * 1000:.1f} ms (first call of the process "
              f"{first * 1000:.1f} ms); best band level {kg.best.level:.1f}, "
              f"{band[0]:.0f}-{band[1]:.0f} Hz, kurtosis {kg.best.kurtosis:.3g} "
              f"(noise 0 ± {kg.best.noise_std:.2g})")
        late = acc[kgm.late_snapshots(acc.shape[0])]
        took, kg = best(lambda: kgm.kurtogram(late, 25600.0), args.repeat)
        print(f"  mean of the last {late.shape[0]} snapshots: {took * 1000:.1f} ms; best band "
              f"level {kg.best.level:.1f}, {kg.best.low:.0f}-{kg.best.high:.0f} Hz, kurtosis "
              f"{kg.best.kurtosis:.3g}")
    big = synth_run("Bearing1_1", n_snapshots=4, samples=32768, rpm=2100.0, seed=0)
    x = big.snapshots[-1, :, 0]
    took, (band, kg, _) = best(lambda: kgm.suggest_band(x, big.fs), args.repeat)
    ok &= took < 0.5
    print(f"synthetic XJTU-SY-sized snapshot (32768 samples, levels 0-{kg.max_level}): "
          f"{took * 1000:.1f} ms; best band level {kg.best.level:.1f}, "
          f"{band[0]:.0f}-{band[1]:.0f} Hz, kurtosis {kg.best.kurtosis:.3g}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
