"""Time the spectrum over life (rul_core.signal.spectrum) on a real FEMTO bearing.

    python bench/spectrum.py [--bearing Bearing1_1] [--repeat 3]

Reads ``../shared/data/real/femto_npz/Learning_set__<bearing>.npz`` (the values the loader
gives: ``acc / 1000`` g, float32; the same as parsing its CSV files) into a Run, and times, on
the horizontal channel, the best of ``--repeat`` runs of:

- the Data page's heatmap: at most 300 snapshots evenly spaced, amplitude (to Nyquist) and
  envelope (2-10 kHz band-pass, to 1000 Hz) spectra;
- every snapshot, batched in chunks (``spectrum_over_life``, what the CLI and scripts get);
- every snapshot one at a time (``compute_spectrum`` per snapshot), to show what batching buys;
  the rows are checked equal to the batched ones.

Then the same page case on a synthetic XJTU-SY-sized bearing (123 snapshots of 32768 samples).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from timing import best, machine_line

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def main() -> int:
    """Time the spectrum over life; exit 1 when the real data is missing or rows differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bearing", default="Bearing1_1")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from rul_core.data.run import Condition, Run
    from rul_core.data.synthetic import synth_run
    from rul_core.signal import spectrum as sp

    npz_path = REAL / "femto_npz" / f"Learning_set__{args.bearing}.npz"
    if not npz_path.is_file():
        print(f"real data not found: {npz_path}", file=sys.stderr)
        return 1
    condition = int(args.bearing[len("Bearing")])
    rpm = {1: 1800.0, 2: 1650.0, 3: 1500.0}[condition]
    acc = (np.load(npz_path)["acc"] / 1000).astype(np.float32)
    run = Run(args.bearing, acc, 25600.0, ["horizontal", "vertical"], Condition(rpm, 0.0))
    print(machine_line())
    print(f"bearing: FEMTO {args.bearing}, {run.n_snapshots} snapshots x {run.n_samples} "
          f"samples, horizontal channel; best of {args.repeat}")
    settings = {
        "amplitude, to Nyquist": sp.SpectrumSettings("amplitude"),
        "envelope 2-10 kHz, to 1 kHz": sp.SpectrumSettings("envelope", sp.default_band(run.fs),
                                                           1000.0),
    }
    ok = True
    for name, s in settings.items():
        page, life = best(lambda s=s: sp.run_spectrum_over_life(run, 0, s, db=True),
                          args.repeat)
        print(f"  {name}: page heatmap ({life.values.shape[0]} x {life.values.shape[1]}) "
              f"{page:.3f} s")
        full, life = best(lambda s=s: sp.run_spectrum_over_life(run, 0, s, max_rows=None,
                                                                max_bins=None), args.repeat)
        x = run.channel(0)
        loop, rows = best(lambda s=s, x=x: np.stack([sp.compute_spectrum(x[i], run.fs, s).values
                                                     for i in range(x.shape[0])]), 1)
        same = np.allclose(rows, life.values, rtol=1e-9, atol=1e-12)
        ok &= bool(same)
        print(f"  {name}: every snapshot ({life.values.shape[0]} x {life.values.shape[1]}) "
              f"batched {full:.3f} s, one at a time {loop:.3f} s ({loop / full:.1f}x); "
              f"rows equal: {same}")
    big = synth_run("Bearing1_1", n_snapshots=123, samples=32768, rpm=2100.0, seed=0)
    print(f"synthetic XJTU-SY-sized bearing: {big.n_snapshots} x {big.n_samples} samples")
    for name, s in settings.items():
        page, life = best(lambda s=s: sp.run_spectrum_over_life(big, 0, s, db=True),
                          args.repeat)
        print(f"  {name}: page heatmap ({life.values.shape[0]} x {life.values.shape[1]}, "
              f"{life.pooled} bins a column) {page:.3f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
