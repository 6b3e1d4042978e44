"""Does training with noisy copies (``train(augmentation=...)``) make a model robust to the
Noise lab's noise? RMSE on held-out FEMTO bearings under each noise kind and severity, for a
model trained clean and models trained with noise augmentation.

The setting is the PHM 2012 challenge command's (RC-LSTM, quick preset, capped labels of
50 min, every 6th snapshot counted back from failure, a fixed 5 epochs, no validation
bearing), on one split that keeps each operating condition on both sides: by default train on
Bearing1_1, Bearing2_1, Bearing3_1 and test on Bearing1_2, Bearing2_2, Bearing3_2. The noise
is the Noise lab's sweep (``rul_core.views.noise_sweep_predictions`` scored by
``sweep_table``: :class:`rul_core.signal.noise.NoiseModel` on the normalised snapshots).
The RMSE is of the capped label, a fraction of the 50 min cap (0.1 = 5 min); the table's last
line is the constant estimate (the training labels' mean).

    python bench/noise_robustness.py [--augment gaussian:1 salt_and_pepper:0.5:1] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phm2012 import NPZ_DIR, load_femto_npz, machine_line

TRAIN = ("Bearing1_1", "Bearing2_1", "Bearing3_1")
TEST = ("Bearing1_2", "Bearing2_2", "Bearing3_2")
KINDS = ("gaussian", "uniform", "salt_and_pepper")


def parse_augmentation(text: str) -> object:
    """``KIND:SEVERITY[:COPIES]`` as a NoiseAugmentation (SystemExit naming the text)."""
    from rul_core.signal.noise import NoiseAugmentation

    parts = text.split(":")
    try:
        if not 2 <= len(parts) <= 3:
            raise ValueError("expected KIND:SEVERITY[:COPIES]")
        copies = int(parts[2]) if len(parts) == 3 else 1
        return NoiseAugmentation(parts[0], float(parts[1]), copies)
    except ValueError as exc:
        raise SystemExit(f"--augment {text!r}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Train the variants, sweep the noise, print the table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--npz-dir", type=Path, default=NPZ_DIR)
    p.add_argument("--train", nargs="+", default=list(TRAIN))
    p.add_argument("--test", nargs="+", default=list(TEST))
    p.add_argument("--augment", nargs="+",
                   default=["gaussian:1", "uniform:1", "salt_and_pepper:1"],
                   metavar="KIND:SEVERITY[:COPIES]",
                   help="the augmented variants (a clean one is always trained)")
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS,
                   help="the noise the test bearings get")
    p.add_argument("--severities", nargs="+", type=float, default=[0, 0.25, 0.5, 1, 2])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--stride", type=int, default=6)
    args = p.parse_args(argv)

    from rul_core import labels as lb
    from rul_core.models import ModelConfig
    from rul_core.training import train
    from rul_core.views import noise_sweep_predictions, sweep_table

    variants = {"clean": None}
    variants.update({f"{a.kind} x{a.severity:g}" + (f" ({a.copies} copies)" if a.copies > 1
                                                    else ""): a
                     for a in map(parse_augmentation, args.augment)})
    train_runs = [load_femto_npz(b, args.npz_dir, stride=args.stride) for b in args.train]
    test_runs = [load_femto_npz(b, args.npz_dir, stride=args.stride) for b in args.test]
    cap = 3000 // (10 * args.stride)  # 50 min in thinned snapshots
    print(f"# Noise robustness of noise-augmented training (bench/noise_robustness.py)\n\n"
          f"{machine_line()}\n\nRC-LSTM quick, capped labels of 50 min ({cap} snapshots of "
          f"{10 * args.stride} s), every {args.stride}th snapshot, {args.epochs} epochs fixed, "
          f"no validation; train {args.train}, test {args.test}; seeds {args.seeds}.\n"
          f"Over the test bearings' windows, mean over seeds; columns: the test noise's "
          f"severity (0 = clean).", flush=True)

    rmse: dict[tuple[str, str], list[np.ndarray]] = {}
    rho: dict[tuple[str, str], list[np.ndarray]] = {}
    for seed in args.seeds:
        for name, aug in variants.items():
            t0 = time.perf_counter()
            cfg = ModelConfig("rc_lstm", preset="quick", dataset_kind="femto", seed=seed)
            trained = train(cfg, train_runs, label_scheme="capped",
                            label_params={"max_rul": cap}, epochs=args.epochs, patience=0,
                            augmentation=aug)
            fit_s = time.perf_counter() - t0
            for kind in args.kinds:
                table = sweep_table(noise_sweep_predictions(
                    {name: trained}, test_runs, kind, list(args.severities), 1000 + seed),
                    list(args.severities))
                rmse.setdefault((name, kind), []).append(table["rmse"].to_numpy())
                rho.setdefault((name, kind), []).append(table["rank_correlation"].to_numpy())
            print(f"  seed {seed} {name}: trained in {fit_s:.0f} s "
                  f"({int(trained.metrics['train_windows'])} windows), clean RMSE "
                  f"{rmse[(name, args.kinds[0])][-1][0]:.2f}", file=sys.stderr, flush=True)

    def labels(runs: list) -> np.ndarray:  # every snapshot has as many windows
        return np.concatenate([lb.label_run(r, "capped", max_rul=cap) for r in runs])

    const = float(np.sqrt(np.mean((labels(test_runs) - labels(train_runs).mean()) ** 2)))
    head = " | ".join(f"{s:g}" for s in args.severities)
    for title, table in (("RMSE (1 = 50 min)", rmse),
                         ("Spearman rank correlation of prediction and label within each test "
                          "bearing, averaged over them (does the estimate still fall as the "
                          "bearing wears?)", rho)):
        print(f"\n{title}\n\n| trained | test noise | {head} |\n|---|---|"
              + "---|" * len(args.severities))
        for kind in args.kinds:
            for name in variants:
                vals = np.nanmean(table[(name, kind)], axis=0)
                print(f"| {name} | {kind} | " + " | ".join(f"{v:.2f}" for v in vals) + " |")
        if table is rmse:
            print(f"| constant | any | {const:.2f} |" + " |" * (len(args.severities) - 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
