"""Data subcommands: ``inspect`` (what a folder or archive holds) and ``synth`` (write data)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rul_core import config
from rul_core.cli.tables import text_table
from rul_core.data.loader import LAYOUTS, is_problem, left_out_lines, load_dataset
from rul_core.data.run import Dataset
from rul_core.errors import ArchiveError, LayoutError
from rul_core.progress import TqdmProgress

MAX_PROBLEMS_SHOWN = 50


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``inspect`` and ``synth``."""
    p = sub.add_parser(
        "inspect",
        help="read a dataset folder or archive and list its runs and problems",
        description="Read PATH (folder, bearing folder, .zip/.tar.gz archive) and print the "
        "layout, every run (condition, snapshots, samples, channels, rate, duration) and every "
        "file skipped with its reason. Exit code 0 when a run was loaded, 1 otherwise.",
    )
    p.add_argument("path", type=Path, help="dataset folder, run folder or archive")
    p.add_argument(
        "--layout", choices=LAYOUTS, default=None, help="force a layout (default: detect)"
    )
    p.add_argument("--temperature", action="store_true", help="also read FEMTO temp_*.csv files")
    p.add_argument("--no-cache", action="store_true", help="do not use the workspace cache")
    p.add_argument("--all", action="store_true", help="list every skipped file, not the first 50")
    p.set_defaults(func=cmd_inspect)

    s = sub.add_parser(
        "synth",
        help="write a synthetic run-to-failure dataset in a real on-disk layout",
        description="Write seeded synthetic bearings (shaft harmonics, BPFO impulses exciting "
        "a resonance, exponential degradation, noise) in the XJTU-SY, FEMTO or generic layout.",
    )
    s.add_argument("--layout", choices=LAYOUTS, required=True, help="on-disk layout to write")
    s.add_argument("--out", type=Path, required=True, help="output folder")
    s.add_argument("--bearings", type=int, default=2, help="bearings per condition (default 2)")
    s.add_argument("--snapshots", type=int, default=20, help="snapshots per bearing (default 20)")
    s.add_argument("--samples", type=int, default=2560, help="samples per snapshot (default 2560)")
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.add_argument("--temperature", action="store_true", help="FEMTO: also write temp files")
    s.set_defaults(func=cmd_synth)


def describe(dataset: Dataset, show_all: bool = False) -> str:
    """A human-readable summary of a loaded dataset and its report."""
    lines = [f"dataset {dataset.name!r}  layout: {dataset.layout}  runs: {len(dataset.runs)}"]
    lines += _run_table(dataset)
    report = dataset.report
    problems = [s for s in report.skipped if is_problem(s)]
    left_out = len(report.skipped) - len(problems)
    lines.append("")
    lines.append(f"files: {len(report.used)} used, {len(problems)} skipped with a problem, "
                 f"{left_out} not read by choice")
    if problems:
        lines.append("problems:")
        shown = problems if show_all else problems[:MAX_PROBLEMS_SHOWN]
        lines += [f"  - {s.reason}" for s in shown]
        if len(shown) < len(problems):
            lines.append(f"  ... and {len(problems) - len(shown)} more (--all lists them)")
    if report.warnings:
        lines.append("warnings:")
        lines += [f"  - {w}" for w in report.warnings]
    return "\n".join(lines)


def _run_table(dataset: Dataset) -> list[str]:
    """One line per run under a header, each column as wide as its widest cell (the FEMTO
    tables fit a 100-column terminal)."""
    header = ("run", "set", "condition", "snapshots", "samples", "ch", "rate Hz", "duration")
    rows = [
        (run.name, run.dataset, run.condition.label, str(run.n_snapshots), str(run.n_samples),
         str(run.n_channels), f"{run.fs:g}",
         _duration(float(run.timestamps[-1]) if run.n_snapshots else 0.0))
        for run in dataset.runs
    ]
    return text_table(header, rows, right=range(3, len(header)), gap=" ")


def print_left_out(dataset: Dataset) -> None:
    """Tell the user, on stderr, which files a command's load skipped (it goes on without);
    through tqdm, so that an open progress bar is redrawn below, not overwritten."""
    from tqdm import tqdm

    for line in left_out_lines(dataset.report):
        tqdm.write(line if line.startswith("  ") else f"warning: {line}", file=sys.stderr)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:g} s"


def cmd_inspect(args: argparse.Namespace) -> int:
    """Load and describe; 0 when something loaded, 1 when nothing could be."""
    bar = TqdmProgress(file=sys.stderr, leave=False)
    try:
        dataset = load_dataset(
            args.path,
            args.layout,
            cache_dir=None if args.no_cache else config.workspace_dir() / "cache",
            progress=bar,
            read_temperature=args.temperature,
        )
    except (LayoutError, ArchiveError) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bar.close()
    print(describe(dataset, args.all))
    return 0 if dataset.runs else 1


def cmd_synth(args: argparse.Namespace) -> int:
    """Write a synthetic dataset and say where."""
    from rul_core.data.synthetic import write_dataset

    if args.bearings < 1 or args.snapshots < 1 or args.samples < 2:
        print("error: --bearings and --snapshots must be >= 1, --samples >= 2", file=sys.stderr)
        return 2
    out = write_dataset(
        args.out,
        args.layout,
        n_bearings=args.bearings,
        n_snapshots=args.snapshots,
        samples=args.samples,
        seed=args.seed,
        temperature=args.temperature,
    )
    print(f"wrote a synthetic {args.layout} dataset to {out}")
    return 0
