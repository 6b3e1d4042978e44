"""Subcommand ``crossval``: cross-validate a model over the bearings of a dataset.

Every fold trains the model with the given settings on some bearings and predicts the bearings
it held out (``--folds K``: K groups of bearings; default: leave one bearing out). The
out-of-fold predictions are scored together, per bearing x condition and seen vs unseen, and
with capped labels replayed as the PHM 2012 challenge would (``rul_core.crossval``). Each fold
trains in a fresh child process unless ``--in-process``; ``--jobs N`` trains N folds at once.
The tables, the out-of-fold snapshot predictions and a summary are written to ``--out``
(default ``<workspace>/crossval/<model>-<ablation>-<time>``) and the run is recorded in the
workspace catalog. Progress: one bar of the whole run, forward only, with its ETA and one line
of every fold training ("1/4 folds done, 2 at once · fold 2: ... · fold 3: ... · 1 waiting").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from rul_core.cli.model_cmds import (
    _common,
    _load,
    _print_table,
    _progress,
    _select,
    _workspace,
    check_training_args,
    interrupts_deferred,
    model_and_data_options,
    model_config,
    on_option,
    print_units,
    training_kwargs,
    training_options,
)
from rul_core.errors import RulError


def cmd_crossval(args: argparse.Namespace) -> int:
    """Cross-validate each ablation over bearings, save and catalog each result as soon as it
    is complete (a Ctrl-C during a later ablation keeps the earlier ones), then print the
    tables (several ablations: also side by side)."""
    from rul_core.crossval import check_result_folder, cross_validate

    ws = _workspace(args)
    progress = _progress(args)
    results: dict[str, Any] = {}
    saved: list[Path] = []
    try:
        check_training_args(args)
        if args.jobs < 1:
            raise RulError(f"crossval: --jobs must be 1 or more, got {args.jobs}")
        if args.jobs > 1 and args.in_process:
            raise RulError(f"crossval: --jobs {args.jobs} trains folds in their own processes; "
                           "not with --in-process")
        if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
            raise RulError(f"crossval: --out {args.out}: is a file; expected a folder for the "
                           "result files")
        if args.out:  # before training, not after
            for ablation in args.ablation:
                check_result_folder(_out_folder(args, ablation))
        ds = _load(args.data, args.layout, ws, progress)
        runs = _select(ds, args.runs, "runs")
        configs = {a: model_config(args, ds.layout, ablation=a) for a in args.ablation}
        for ablation, config in configs.items():  # every config checked before any training
            result = cross_validate(
                config, runs, n_folds=args.folds, split_seed=args.split_seed,
                inner_val=args.inner_val, on=args.on, isolate=not args.in_process,
                jobs=args.jobs, progress=progress,
                **training_kwargs(args))
            results[ablation] = result
            _save(args, ablation, result, ws, ds, saved)
    except KeyboardInterrupt:
        if not results:
            raise
        doing = next((a for a in args.ablation if a not in results), None)
        during = f"while cross-validating {args.model}/{doing}" if doing else "while saving"
        kept = ", ".join(f"{a} ({p})" for a, p in zip(results, saved, strict=False))
        print(f"\ncrossval: cancelled {during}; {len(saved)} of {len(set(args.ablation))} "
              f"ablation(s) kept whole (saved and catalogued): {kept or 'none'}",
              file=sys.stderr)
        return 130
    finally:
        if progress is not None:
            progress.close()
    _report(args, results, saved)
    return 0


def _save(args: argparse.Namespace, ablation: str, result: Any, ws: Any, ds: Any,
          saved: list[Path]) -> None:
    """Save and catalog one ablation's result (adding its folder to ``saved``); a Ctrl-C
    while it is saved waits until it is catalogued."""
    from rul_core.crossval import record

    with interrupts_deferred() as held:
        if not saved:
            ws.add_dataset(ds.name, str(Path(args.data).resolve()), layout=ds.layout,
                           runs=ds.run_names)
        saved.append(record(result, ws, dataset=ds.name, out=_out_folder(args, ablation)))
    if held:
        raise KeyboardInterrupt


def _report(args: argparse.Namespace, results: dict[str, Any], saved: list[Path]) -> None:
    """Print each ablation's tables and where it was saved, then the side-by-side table."""
    from rul_core.evaluation import ablation_table

    several = len(results) > 1
    for (ablation, result), folder in zip(results.items(), saved, strict=True):
        about = f": {args.model}/{ablation}" if several else ""
        ev = result.evaluation
        _print_table(f"out-of-fold predictions per bearing x condition ({args.on}s){about}",
                     ev.table)
        if ablation == args.ablation[0]:
            print_units()
        _print_table(f"seen vs unseen conditions{about} (seen: a training bearing of the same "
                     "fold ran at that speed and load)", ev.seen_unseen)
        _print_table(f"folds{about}", result.folds)
        if len(result.replay):
            _print_table(f"PHM 2012 replay of each held-out bearing{about} (mean accuracy A at "
                         "the challenge's cuts, and at 13 cuts over 50-98 % of life)",
                         result.replay)
        print("\nsummary: " + ", ".join(f"{k} {v:.4g}" for k, v in result.summary().items()))
        print(f"written to {folder}")
    if several:
        _print_table("out-of-fold metrics side by side (the papers' ablation table)",
                     ablation_table({a: r.evaluation for a, r in results.items()}))


def _out_folder(args: argparse.Namespace, ablation: str) -> Path | None:
    """Where ``ablation``'s result is saved: ``--out`` (its subfolder ``ablation`` when
    several ablations run), or None for a new folder in the workspace."""
    if not args.out:
        return None
    return Path(args.out) / ablation if len(set(args.ablation)) > 1 else Path(args.out)


def register(sub: argparse._SubParsersAction) -> None:
    """Add crossval."""
    p = sub.add_parser(
        "crossval",
        help="cross-validate a model over the bearings of a dataset (out-of-fold scores)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model_and_data_options(p, several_ablations=True)
    p.add_argument("--runs", nargs="+", metavar="RUN",
                   help="bearings to cross-validate over (default: all)")
    p.add_argument("--folds", type=int, default=None, metavar="K",
                   help="K folds of whole bearings (default: one per bearing, leave one out)")
    p.add_argument("--split-seed", type=int, default=0,
                   help="seed of the assignment of bearings to the K folds (default 0)")
    p.add_argument("--inner-val", action="store_true",
                   help="the last training bearing of each fold validates (early stopping, "
                        "interval calibration) instead of training")
    on_option(p)
    p.add_argument("--in-process", action="store_true",
                   help="train the folds in this process (faster start; memory grows by what "
                        "TensorFlow keeps after each fit)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train N folds at once, each in its own process, with the same result "
                        "(2 on two CPU cores: 1.4 times faster for RC-LSTM; a GPU takes many "
                        "more; each fold needs its own memory; not with --in-process)")
    training_options(p)
    p.add_argument("--out", default=None,
                   help="result folder, one subfolder per ablation when several (default: "
                        "<workspace>/crossval/<model>-<ablation>-<time>)")
    _common(p)
    p.set_defaults(func=cmd_crossval)
