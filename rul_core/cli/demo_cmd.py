"""``python -m rul_core demo-assets --out assets/demo``: the app's bundled demo.

Writes a small *synthetic* FEMTO-layout dataset (never a copy of the real FEMTO data), trains a
quick demo model on it, saves the model bundle, and lists everything in ``MANIFEST.json``.
Seeded, so two builds give the same data and (on one machine) the same model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from rul_core.atomic import atomic_dir, check_replaceable
from rul_core.errors import RulError
from rul_core.progress import ProgressFn, TqdmProgress, emit

DEMO_BEARINGS = {1: 3, 2: 1}  # FEMTO condition -> bearings
DEMO_SNAPSHOTS = 12
# "name[:ablation]"; the first is the primary demo model (folder "model"). CARL = CARLE
# without its forest head: a small bundle, and the explanations cover the whole model.
DEMO_MODELS = ("carle:carl", "multimodal", "rc_lstm")
DEMO_EPOCHS = 60
DEMO_PATIENCE = 25
# RC-LSTM steps through Table III's three losses and needs the whole budget on 96 windows:
# 120 epochs without stopping early reach a validation RMSE of 0.30 (0.51 with the default).
DEMO_EPOCHS_PATIENCE = {"rc_lstm": (120, 120)}
TRAIN_RUNS = ("Bearing1_1", "Bearing1_2")  # tests: Bearing1_3 (seen), Bearing2_1 (unseen)


def _tree_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build_demo(
    out: str | Path,
    *,
    seed: int = 0,
    n_snapshots: int = DEMO_SNAPSHOTS,
    models: tuple[str, ...] = DEMO_MODELS,
    epochs: int | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Build the demo into ``out`` (replaced atomically) and return the manifest.

    ``models`` are trained at the quick preset; the first is saved as ``model/`` (the primary
    demo model), the others as ``model_<name>/``. ``models=()`` writes the dataset only.
    """
    from rul_core.data.synthetic import write_dataset

    out = Path(out).resolve()
    t0 = time.perf_counter()
    with atomic_dir(out) as tmp:
        emit(progress, "demo", 0, 3, "writing the synthetic dataset")
        for condition, n_bearings in DEMO_BEARINGS.items():
            write_dataset(tmp / "data", "femto", n_bearings=n_bearings,
                          n_snapshots=n_snapshots, seed=seed, conditions=[condition])
        manifest: dict[str, Any] = {
            "description": (
                "Synthetic run-to-failure bearings in the PRONOSTIA/FEMTO layout: "
                + ", ".join(f"{n} of condition {c}" for c, n in DEMO_BEARINGS.items())
                + f", {n_snapshots} snapshots of 2560 samples at 25.6 kHz each (made by "
                "rul_core.data.synthetic; not real data)."
            ),
            "dataset": "data",
            "layout": "femto",
            "seed": seed,
            "model": None,
            "models": {},
            "train_runs": list(TRAIN_RUNS),
        }
        for i, spec in enumerate(models):
            name, _, ablation = spec.partition(":")
            ablation = ablation or "full"
            emit(progress, "demo", 1, 3, f"training the demo {spec} model")
            folder = "model" if i == 0 else f"model_{name}"
            info = _train_demo_model(tmp, name, ablation, folder, seed, epochs)
            label = f"demo {name}" + ("" if ablation == "full" else f"/{ablation}")
            manifest["models"][label] = info
            if i == 0:
                manifest["model"] = folder
        manifest["files"] = sorted(
            str(f.relative_to(tmp)) for f in tmp.rglob("*") if f.is_file()
        )
        manifest["total_bytes"] = _tree_size(tmp)
        manifest["build_seconds"] = round(time.perf_counter() - t0, 1)
        (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    emit(progress, "demo", 3, 3, "done")
    return manifest


def _train_demo_model(
    root: Path, model: str, ablation: str, folder: str, seed: int, epochs: int | None
) -> dict[str, Any]:
    from rul_core.bundle import save_bundle
    from rul_core.data import load_dataset
    from rul_core.models.presets import ModelConfig
    from rul_core.training import train

    dataset = load_dataset(root / "data", layout="femto")
    train_runs = [r for r in dataset.runs if r.name in TRAIN_RUNS]
    test_runs = [r for r in dataset.runs if r.name not in TRAIN_RUNS]
    config = ModelConfig(name=model, ablation=ablation, preset="quick", dataset_kind="femto",
                         seed=seed, mc_samples=10)
    default_epochs, patience = DEMO_EPOCHS_PATIENCE.get(model, (DEMO_EPOCHS, DEMO_PATIENCE))
    trained = train(config, train_runs, val_runs=test_runs[:1], label_scheme="piecewise",
                    epochs=default_epochs if epochs is None else epochs, patience=patience,
                    seed=seed)
    save_bundle(trained, root / folder)
    return {
        "path": folder,
        "config": config.to_dict(),
        "train_runs": [r.name for r in train_runs],
        "test_runs": [r.name for r in test_runs],
        "model_metrics": {k: round(float(v), 5) for k, v in trained.metrics.items()},
    }


def _demo_entry(name: str) -> bool:
    """True for what :func:`build_demo` writes (MANIFEST.json, data/, model*/)."""
    return name in ("MANIFEST.json", "data") or name.startswith("model")


def _run(args: argparse.Namespace) -> int:
    """Build the demo into ``--out``; the counts are checked before anything is written."""
    if args.snapshots < 1:
        raise RulError(f"demo-assets: --snapshots must be 1 or more, got {args.snapshots}")
    check_replaceable(args.out, _demo_entry, "demo assets")
    bar = TqdmProgress()
    try:
        models = () if args.no_model else tuple(m.strip() for m in args.models.split(","))
        manifest = build_demo(args.out, seed=args.seed, n_snapshots=args.snapshots,
                              models=models, epochs=args.epochs, progress=bar)
    finally:
        bar.close()
    names = ", ".join(manifest["models"]) or "none"
    print(f"demo assets in {Path(args.out).resolve()}: {len(manifest['files'])} files, "
          f"{manifest['total_bytes'] / 1e6:.2f} MB, models: {names}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo-assets`` subcommand."""
    p = sub.add_parser("demo-assets", help="build the app's synthetic demo data and demo model",
                       description=__doc__)
    p.add_argument("--out", default="assets/demo",
                   help="output folder: new, empty or earlier demo assets (replaced)")
    p.add_argument("--seed", type=int, default=0, help="seed of data and model")
    p.add_argument("--snapshots", type=int, default=DEMO_SNAPSHOTS,
                   help="snapshots per bearing")
    p.add_argument("--models", default=",".join(DEMO_MODELS),
                   help="comma-separated demo models 'name[:ablation]' (quick preset); the "
                        "first is the primary one")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"training epochs (default: {DEMO_EPOCHS}; RC-LSTM "
                        f"{DEMO_EPOCHS_PATIENCE['rc_lstm'][0]})")
    p.add_argument("--no-model", action="store_true", help="write the dataset only")
    p.set_defaults(func=_run)
