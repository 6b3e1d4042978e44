"""``features`` subcommand: ImR and TF features of every window of every run, resumable."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from rul_core import config
from rul_core.atomic import write_text
from rul_core.cli.data_cmds import print_left_out
from rul_core.data.run import Run
from rul_core.signal.features import FEATURE_NAMES
from rul_core.signal.normalise import Normaliser
from rul_core.signal.pipeline import PipelineConfig, WindowSet, extract_windows, fit_normaliser

MANIFEST = "features.json"


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``features``."""
    p = sub.add_parser(
        "features",
        help="extract ImR images and TF features for every window of every run",
        description="Load PATH, fit the min-max normaliser on the selected runs (or read "
        "--normaliser), and write DIR/<run>.npz (images uint8 (n,64,500) pair counts, tf "
        "float32 (n,channels,7), snapshot_index, offset) plus DIR/features.json (config, "
        "normaliser, runs). Runs whose file already matches the configuration, normaliser "
        "and data are skipped, so an interrupted job resumes where it stopped.",
    )
    p.add_argument("path", type=Path, help="dataset folder, run folder or archive")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--layout", default=None, help="xjtu, femto or generic (default: detect)")
    p.add_argument("--runs", nargs="+", metavar="NAME", help="only these runs (default: all)")
    p.add_argument("--window", type=int, default=config.WINDOW_LENGTH,
                   help=f"window length in samples (default {config.WINDOW_LENGTH})")
    p.add_argument("--stride", type=int, default=config.WINDOW_STRIDE,
                   help=f"window stride in samples (default {config.WINDOW_STRIDE})")
    p.add_argument("--sigma", type=float, default=None,
                   help="Gaussian filter sigma in samples (default: no filter; SPEC: 0.75 "
                   "XJTU-SY, 1.1 FEMTO)")
    p.add_argument("--imr-channel", type=int, default=0, help="channel drawn as ImR (default 0)")
    p.add_argument("--scales", type=int, default=config.CWT_NUM_SCALES,
                   help=f"CWT scales (default {config.CWT_NUM_SCALES})")
    p.add_argument("--normaliser", type=Path, default=None,
                   help="JSON with a stored normaliser (a features.json or model card also "
                   "works) instead of fitting one on the selected runs")
    p.add_argument("--no-cache", action="store_true", help="do not use the workspace cache")
    p.add_argument("--force", action="store_true", help="recompute runs that are up to date")
    p.set_defaults(func=cmd_features)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "run"


def _run_key(run: Run, cfg: PipelineConfig, normaliser: Normaliser) -> str:
    text = json.dumps({"config": cfg.to_dict(), "normaliser": normaliser.to_dict(),
                       "data": run.content_hash()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _existing_key(path: Path) -> str | None:
    try:
        _, meta = WindowSet.load(path)
    except (OSError, ValueError, KeyError):
        return None
    return meta.get("key")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_text(path, json.dumps(data, indent=2))


def load_normaliser(path: Path) -> Normaliser:
    """A normaliser from a JSON file: bare, or under a ``normaliser`` key."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--normaliser {path}: cannot read JSON ({exc})") from exc
    if isinstance(data, dict) and "normaliser" in data:
        data = data["normaliser"]
    try:
        return Normaliser.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--normaliser {path}: {exc}") from exc


def cmd_features(args: argparse.Namespace) -> int:
    """Extract and write features; 0 on success, 1 when no run was selected."""
    from rul_core.data import load_dataset
    from rul_core.progress import TqdmProgress, emit

    try:
        cfg = PipelineConfig(window_length=args.window, stride=args.stride,
                             gaussian_sigma=args.sigma, imr_channel=args.imr_channel,
                             n_scales=args.scales)
        normaliser = load_normaliser(args.normaliser) if args.normaliser else None
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bar = TqdmProgress(file=sys.stderr, leave=False)
    try:
        dataset = load_dataset(
            args.path, args.layout,
            cache_dir=None if args.no_cache else config.workspace_dir() / "cache",
            progress=bar,
        )
        print_left_out(dataset)
        runs = dataset.runs
        if args.runs:
            missing = sorted(set(args.runs) - set(dataset.run_names))
            if missing:
                print(f"error: --runs: no run {', '.join(missing)}; available: "
                      f"{', '.join(dataset.run_names)}", file=sys.stderr)
                return 2
            runs = [r for r in runs if r.name in set(args.runs)]
        if not runs:
            print("error: no run to process", file=sys.stderr)
            return 1
        names = [_safe_name(r.name) for r in runs]
        if len(set(names)) != len(names):
            print("error: two runs share a name; select them with --runs", file=sys.stderr)
            return 2
        if normaliser is None:
            normaliser = fit_normaliser(runs, cfg)
        args.out.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "config": cfg.to_dict(), "config_hash": cfg.hash(),
            "normaliser": normaliser.to_dict(), "feature_names": list(FEATURE_NAMES),
            "source": str(args.path), "runs": {},
        }
        for i, (run, fname) in enumerate(zip(runs, names, strict=True)):
            emit(bar, "runs", i, len(runs), run.name)
            target = args.out / f"{fname}.npz"
            key = _run_key(run, cfg, normaliser)
            status = "skipped (up to date)"
            if args.force or _existing_key(target) != key:
                ws = extract_windows(run, normaliser, cfg, progress=bar)
                ws.save(target, key=key, config=cfg.to_dict(), config_hash=cfg.hash(),
                        normaliser=normaliser.to_dict(), fs=run.fs,
                        rpm=run.condition.rpm, load_n=run.condition.load_n)
                status = "written"
            manifest["runs"][run.name] = {"file": target.name, "key": key,
                                          "snapshots": run.n_snapshots}
            _write_json(args.out / MANIFEST, manifest)
            print(f"{run.name}: {status} -> {target}", file=sys.stderr)
        emit(bar, "runs", len(runs), len(runs))
    finally:
        bar.close()
    print(f"features of {len(runs)} run(s) in {args.out}")
    return 0
