"""IEEE PHM 2012 protocol on the six FEMTO learning bearings (benchmark, not a test).

For each model and ablation (``quick`` preset): leave-one-bearing-out over the learning
bearings — train on five, predict the sixth — and report per-bearing RMSE of the normalised RUL
(piecewise label, window predictions), plus wall time and peak resident memory of training.
Then the training throughput (windows/s) of each model at the ``paper`` preset on this machine
(random inputs of the right shape, a few batches after one warm-up batch).

Real data: ``../shared/data/real/femto_npz/Learning_set__BearingC_Y.npz`` (``acc`` int32
milli-g -> /1000 for g; 25.6 kHz; a snapshot every 10 s; condition from the bearing number).
``--max-snapshots`` keeps that many snapshots evenly spaced over each bearing's whole life (the
normalised label is unchanged by the subsampling), so a run fits in minutes.

    python bench/phm2012.py --models carle --max-snapshots 40 --epochs 3
    python bench/phm2012.py --models carle multimodal rc_lstm --bearings Bearing1_1 Bearing2_1
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rul_core.data.run import Condition, Run

NPZ_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "femto_npz"
BEARINGS = ("Bearing1_1", "Bearing1_2", "Bearing2_1", "Bearing2_2", "Bearing3_1", "Bearing3_2")
CONDITIONS = {1: (1800.0, 4000.0), 2: (1650.0, 4200.0), 3: (1500.0, 5000.0)}


def load_femto_npz(bearing: str, npz_dir: Path = NPZ_DIR, max_snapshots: int | None = None) -> Run:
    """One learning bearing as a Run (optionally ``max_snapshots`` evenly spaced snapshots)."""
    path = npz_dir / f"Learning_set__{bearing}.npz"
    with np.load(path, allow_pickle=False) as z:
        acc = z["acc"]
        n = acc.shape[0]
        idx = np.arange(n)
        if max_snapshots and max_snapshots < n:
            idx = np.unique(np.linspace(0, n - 1, int(max_snapshots)).round().astype(int))
        snaps = acc[idx].astype(np.float32) / 1000.0
    cond_no = int(bearing.removeprefix("Bearing").split("_")[0])
    rpm, load = CONDITIONS[cond_no]
    return Run(
        name=bearing,
        snapshots=snaps,
        fs=25600.0,
        channel_names=["horizontal", "vertical"],
        condition=Condition(rpm, load, f"condition {cond_no} ({rpm:g} rpm, {load:g} N)"),
        timestamps=idx * 10.0,
        dataset="femto-learning",
        layout="femto",
    )


class PeakRss:
    """Samples this process's resident memory (``/proc/self/status`` VmRSS) every 50 ms."""

    def __enter__(self) -> PeakRss:
        self.peak = self._rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())


def lobo(
    models: list[str],
    ablations: list[str] | None,
    bearings: list[str],
    epochs: int | None,
    max_snapshots: int | None,
    seed: int,
) -> list[dict]:
    """Leave-one-bearing-out rows: model, ablation, bearing, rmse, mae, wall_s, peak_rss_mb."""
    import gc

    import keras

    from rul_core import metrics as mt
    from rul_core.models import ABLATIONS, ModelConfig
    from rul_core.training import leave_one_bearing_out, predict_windows, train

    runs = {b: load_femto_npz(b, max_snapshots=max_snapshots) for b in bearings}
    rows = []
    for model in models:
        for ablation in ablations or ABLATIONS[model]:
            if ablation not in ABLATIONS[model]:
                continue
            for train_names, (held,) in leave_one_bearing_out(bearings):
                cfg = ModelConfig(
                    model,
                    ablation=ablation,
                    preset="quick",
                    dataset_kind="femto",
                    seed=seed,
                    mc_samples=10,
                )
                keras.backend.clear_session()
                gc.collect()
                rss0 = PeakRss._rss()
                t0 = time.perf_counter()
                with PeakRss() as mem:
                    tm = train(
                        cfg, [runs[n] for n in train_names], epochs=epochs, label_scheme="piecewise"
                    )
                wall = time.perf_counter() - t0
                w = predict_windows(tm, runs[held], with_labels=True)
                row = {
                    "model": model,
                    "ablation": ablation,
                    "bearing": held,
                    "rmse": mt.rmse(w["y_true"], w["rul"]),
                    "mae": mt.mae(w["y_true"], w["rul"]),
                    "picp": mt.picp(w["y_true"], w["lower"], w["upper"]),
                    "wall_s": wall,
                    "peak_rss_mb": mem.peak / 2**20,
                    "rss_growth_mb": (mem.peak - rss0) / 2**20,
                    "epochs": int(tm.metrics["epochs_run"]),
                    "train_windows": int(tm.metrics["train_windows"]),
                }
                rows.append(row)
                print(
                    f"  {model}/{ablation} held {held}: rmse {row['rmse']:.4f} "
                    f"({wall:.1f} s, {row['peak_rss_mb']:.0f} MB)",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


def throughput(models: list[str], batches: int, batch_size: int | None) -> list[dict]:
    """Training windows/s at the paper preset on random inputs (after one warm-up batch)."""
    import keras

    from rul_core.models import ModelConfig, build_model

    rows = []
    for model in models:
        cfg = ModelConfig(model, preset="paper", dataset_kind="femto")
        net = build_model(cfg)
        bs = int(batch_size or cfg.resolved().get("batch_size", 32))
        rng = np.random.default_rng(0)
        xs = [rng.random((bs, *t.shape[1:]), dtype=np.float32) for t in net.inputs]
        y = rng.random((bs, 1), dtype=np.float32)
        x = xs[0] if len(xs) == 1 else xs
        net.train_on_batch(x, y)  # warm-up: tracing
        t0 = time.perf_counter()
        for _ in range(batches):
            net.train_on_batch(x, y)
        dt = time.perf_counter() - t0
        rows.append(
            {
                "model": model,
                "batch_size": bs,
                "batches": batches,
                "windows_per_s": bs * batches / dt,
                "params": int(net.count_params()),
            }
        )
        print(f"  {model} paper: {bs * batches / dt:.1f} windows/s", file=sys.stderr, flush=True)
        del net
        keras.backend.clear_session()
    return rows


def markdown(rows: list[dict], cols: list[str]) -> str:
    """Rows as a markdown table."""

    def f(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(f(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["multimodal", "carle", "rc_lstm"])
    p.add_argument("--ablations", nargs="+", default=None, help="default: every ablation")
    p.add_argument("--bearings", nargs="+", default=list(BEARINGS))
    p.add_argument("--epochs", type=int, default=None, help="default: the quick preset's")
    p.add_argument("--max-snapshots", type=int, default=None, help="per bearing (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--throughput-models",
        nargs="*",
        default=None,
        help="models for the paper-preset throughput (default: --models)",
    )
    p.add_argument("--throughput-batches", type=int, default=3)
    p.add_argument(
        "--throughput-batch-size",
        type=int,
        default=None,
        help="default: the paper preset's batch size",
    )
    p.add_argument("--skip-lobo", action="store_true")
    args = p.parse_args(argv)

    import keras

    print(
        f"# PHM 2012 leave-one-bearing-out (quick preset)\n\nmachine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores, {platform.platform()}; keras {keras.__version__}; "
        f"max snapshots per bearing: {args.max_snapshots or 'all'}; epochs: "
        f"{args.epochs or 'preset'}\n"
    )
    if not args.skip_lobo:
        rows = lobo(
            args.models, args.ablations, args.bearings, args.epochs, args.max_snapshots, args.seed
        )
        print(
            markdown(
                rows,
                [
                    "model",
                    "ablation",
                    "bearing",
                    "rmse",
                    "mae",
                    "picp",
                    "epochs",
                    "train_windows",
                    "wall_s",
                    "peak_rss_mb",
                    "rss_growth_mb",
                ],
            )
        )
        print()
        summary: dict[tuple[str, str], list[float]] = {}
        for r in rows:
            summary.setdefault((r["model"], r["ablation"]), []).append(r["rmse"])
        print(
            markdown(
                [
                    {"model": m, "ablation": a, "mean_rmse": float(np.mean(v)), "bearings": len(v)}
                    for (m, a), v in summary.items()
                ],
                ["model", "ablation", "mean_rmse", "bearings"],
            )
        )
        print()
    tp_models = args.models if args.throughput_models is None else args.throughput_models
    if tp_models:
        print("## Training throughput, paper preset, CPU\n")
        print(
            markdown(
                throughput(tp_models, args.throughput_batches, args.throughput_batch_size),
                ["model", "params", "batch_size", "batches", "windows_per_s"],
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
