"""Subcommands ``train``, ``evaluate``, ``predict``, ``phm2012`` and ``models``
(``train``'s defaults: :data:`TRAIN_DESCRIPTION`)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rul_core.atomic import atomic_path
from rul_core.cli.data_cmds import print_left_out
from rul_core.data.loader import LAYOUTS
from rul_core.errors import RulError
from rul_core.labels import SCHEMES as LABEL_SCHEMES
from rul_core.models.presets import parse_key_values
from rul_core.progress import emit

TRAIN_DESCRIPTION = """\
Train a model on runs of --data and write its bundle to --out.

Every run of --data that is not named by --test is a training run; the validation run (early
stopping, learning-rate reduction, reported val_* metrics) is given by --val, or else the *last*
training run is held out as validation (one fold of leave-one-bearing-out) when there are at
least two; --no-val trains on every run without validation. The bundle is registered in the
workspace catalog (--workspace, default $RUL_WORKSPACE or ./workspace).

One bar covers the whole job, named after its stage (prepare, build, compile: the first
batch, train, forest, validate, save), until the bundle is written and catalogued; building
the model and compiling its first batch report nothing while they run, so their line counts
their seconds. The bar's ETA leaves out the first batch's one-off costs (graph tracing): it
reads "estimating..." until it has a basis, and "<=" while early stopping may end training
sooner.
Ctrl-C during training writes nothing (exit 130). Once training has finished, the bundle is
written and catalogued whole first, and the command says the cancel came too late (exit 0; 130
when that skipped the --test evaluation).
"""


def _workspace(args: argparse.Namespace) -> Any:
    from rul_core.workspace import Workspace

    return Workspace(args.workspace) if args.workspace else Workspace()


def _load(path: str, layout: str | None, ws: Any, progress: Any = None) -> Any:
    """Load a dataset (or a single run folder) through the data layer's loader."""
    try:
        from rul_core.data import load_dataset
    except ImportError as exc:  # pragma: no cover - the loader is part of the package
        raise RulError("the dataset loader (rul_core.data.load_dataset) is not available") from exc
    p = Path(path)
    if not p.exists():
        raise RulError(f"{p}: no such file or directory")
    dataset = load_dataset(p, layout=layout, cache_dir=ws.path / "cache", progress=progress)
    print_left_out(dataset)
    return dataset


def _select(dataset: Any, names: list[str] | None, what: str) -> list[Any]:
    if not names:
        return list(dataset.runs)
    out = []
    for n in names:
        try:
            out.append(dataset.run(n))
        except KeyError as exc:
            raise RulError(f"--{what}: {exc.args[0]}") from exc
    return out


def check_csv_out(args: argparse.Namespace) -> None:
    """Refuse an ``--out`` (or ``--predictions``) that cannot become a CSV file (a folder)
    before any work is done."""
    for option in ("out", "predictions"):
        value = getattr(args, option, None)
        if value and Path(value).is_dir():
            raise RulError(f"{args.command}: --{option} {value}: is a folder; expected the "
                           "path of a CSV file to write")


def _write_csv_atomic(df: Any, path: str | Path) -> Path:
    target = Path(path).resolve()
    with atomic_path(target) as tmp:
        df.to_csv(tmp, index=False)
    return target


def _progress(args: argparse.Namespace) -> Any:
    from rul_core.progress import TqdmProgress

    return None if args.quiet else TqdmProgress(leave=False, file=sys.stderr)


def _print_table(title: str, df: Any) -> None:
    from rul_core.evaluation import to_markdown

    print(f"\n## {title}\n")
    print(to_markdown(df))


def print_units() -> None:
    """The units of the metric columns, under the first table of metrics (100 columns)."""
    import textwrap

    from rul_core.evaluation import METRIC_UNITS

    print("\n" + textwrap.fill(f"units: {METRIC_UNITS}", width=100))


def _print_protocol(tables: dict[str, Any]) -> None:
    """The PHM 2012 protocol of an evaluation (:func:`rul_core.phm2012.protocol_tables`)."""
    scored, replayed = tables["scored"], tables["replayed"]
    if len(scored):
        _print_table("PHM 2012 test bearings (time left after the last snapshot)", scored)
        print(f"\nchallenge score: {scored['accuracy'].mean():.4f} over {len(scored)} of the "
              f"eleven test bearings (the 2012 academic winner scored {tables['winner']})")
    if len(replayed):
        _print_table("PHM 2012 replay on runs recorded to failure (mean accuracy A at the "
                     "challenge's cuts, and at 13 cuts over 50-98 % of life)", replayed)
        print(f"\nproxy {replayed['proxy'].mean():.4f}, grid proxy "
              f"{replayed['grid_proxy'].mean():.4f} (mean over {len(replayed)} runs)")
    for note in tables["notes"]:
        print(note)


def check_training_args(args: argparse.Namespace) -> None:
    """The training options that argparse cannot check alone (``--epochs``, ``--batch-size``,
    ``--patience``, ``--every``, ``--phases``), named in the error."""
    for option, value in (("--epochs", args.epochs), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise RulError(f"{args.command}: {option} must be 1 or more, got {value}")
    if args.patience < 0:
        raise RulError(f"{args.command}: --patience must be 0 (no early stopping) or more, got "
                       f"{args.patience}")
    if args.every < 1:
        raise RulError(f"{args.command}: --every must be 1 (every snapshot) or more, got "
                       f"{args.every}")
    if not 1 <= args.phases <= args.every:
        raise RulError(f"{args.command}: --phases must lie between 1 and --every ({args.every}), "
                       f"got {args.phases}")
    augmentation(args)  # its own errors name the option


def model_config(args: argparse.Namespace, layout: str | None, ablation: str | None = None
                 ) -> Any:
    """The ModelConfig of the model options (``--dataset-kind`` defaults from the layout;
    ``ablation`` instead of ``--ablation``)."""
    from rul_core.models.presets import ModelConfig

    return ModelConfig(
        name=args.model,
        ablation=ablation or args.ablation,
        preset=args.preset,
        dataset_kind=args.dataset_kind or ("xjtu" if layout == "xjtu" else "femto"),
        seed=args.seed,
        interval=args.interval,  # rc_lstm: gaussian, or an ensemble of Gaussian heads
        n_members=args.n_members,
        hparams=parse_key_values(args.hparam, "--hparam"),
    )


def augmentation(args: argparse.Namespace) -> Any:
    """The NoiseAugmentation of ``--augment-noise`` (None without it), checked."""
    from rul_core.signal.noise import NoiseAugmentation

    prefix = f"{args.command}: " if getattr(args, "command", None) else ""
    if args.augment_noise is None:
        if args.augment_copies != 1 or args.augment_severity != 1.0:
            raise RulError(f"{prefix}--augment-severity and --augment-copies need "
                           "--augment-noise KIND")
        return None
    try:
        return NoiseAugmentation(args.augment_noise, args.augment_severity, args.augment_copies)
    except ValueError as exc:  # "<field>: expected ..., got ..."
        field, _, what = str(exc).partition(": ")
        option = {"kind": "noise"}.get(field, field)
        raise RulError(f"{prefix}--augment-{option}: {what}") from None


def training_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """:func:`rul_core.training.train` keywords of the training options."""
    return {
        "label_scheme": args.labels,
        "label_params": parse_key_values(args.label_param, "--label-param"),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "patience": args.patience,
        "seed": args.seed,
        "snapshot_every": args.every,
        "snapshot_phases": args.phases,
        "augmentation": augmentation(args),
    }


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """Hold Ctrl-C (SIGINT) back while the block runs, and yield the list of those held: a
    result already computed is written and catalogued whole, never a bundle on disk that the
    catalog does not list while the command says it was cancelled. Outside the main thread
    (where Python handles signals) it holds nothing back."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, previous)


LATE_CANCEL = "finished before the cancel arrived"


def _training_job(progress: Any, config: Any, train_runs: list[Any], val_runs: list[Any],
                  args: argparse.Namespace) -> Any:
    """The training's ProgressFn: one bar from the training's start until its bundle is
    written and catalogued (the plan's ``save`` stage, which its ETA counts); None without
    ``progress``."""
    if progress is None:
        return None
    from rul_core.job_progress import WrappedTraining, training_plan

    plan = training_plan(config, train_runs, val_runs, save=True, **training_kwargs(args))
    return WrappedTraining(progress, plan.stages)


# --------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """Train a model and write its bundle."""
    from rul_core.bundle import check_bundle_target, save_bundle
    from rul_core.evaluation import evaluate
    from rul_core.training import stopping_note, train

    ws = _workspace(args)
    progress = _progress(args)
    try:
        check_training_args(args)
        check_bundle_target(args.out)  # before training, not after
        ds = _load(args.data, args.layout, ws, progress)
        test_names = set(args.test or [])
        train_runs = _select(ds, args.train, "train")
        train_runs = [r for r in train_runs if r.name not in test_names]
        val_runs = _select(ds, args.val, "val") if args.val else []
        val_names = {r.name for r in val_runs}
        train_runs = [r for r in train_runs if r.name not in val_names]
        if not args.val and not args.no_val and len(train_runs) >= 2:
            val_runs = [train_runs.pop()]
        if not train_runs:
            raise RulError("train: no training runs left after removing --test/--val runs")
        config = model_config(args, ds.layout)
        print(
            f"training {config.name}/{config.ablation} ({config.preset}) on "
            f"{[r.name for r in train_runs]}, validation {[r.name for r in val_runs]}",
            file=sys.stderr,
        )
        job = _training_job(progress, config, train_runs, val_runs, args)
        try:
            trained = train(config, train_runs, val_runs=val_runs or None, progress=job,
                            **training_kwargs(args))
        except KeyboardInterrupt:
            print(f"\ntrain: cancelled before the training finished; no bundle written to "
                  f"{args.out}, nothing catalogued", file=sys.stderr)
            return 130
        with interrupts_deferred() as held:  # the training is done: keep it whole
            emit(job, "save", 0, 2, "saving the bundle")
            out = save_bundle(trained, args.out)
            emit(job, "save", 1, 2, "cataloguing the bundle")
            ws.add_dataset(ds.name, str(Path(args.data).resolve()), layout=ds.layout,
                           runs=ds.run_names)
            ws.add_bundle(
                out,
                model=config.name,
                ablation=config.ablation,
                preset=config.preset,
                metrics=trained.metrics,
                dataset=ds.name,
            )
            emit(job, "save", 2, 2, "bundle written and catalogued")
        print(f"bundle written to {out}")
        for k, v in sorted(trained.metrics.items()):
            print(f"  {k}: {v:.6g}")
        print_units()
        stopping = stopping_note(trained)
        if stopping:
            print(stopping)
        if held:
            skipped = "; the test evaluation was skipped" if args.test else ""
            print(f"train: {LATE_CANCEL} — the bundle is kept ({out}, catalogued){skipped}",
                  file=sys.stderr)
            return 130 if args.test else 0
        if args.test:
            try:
                result = evaluate(trained, _select(ds, args.test, "test"), progress=progress)
            except KeyboardInterrupt:
                print(f"\ntrain: the test evaluation was cancelled; the bundle is kept ({out}, "
                      "catalogued)", file=sys.stderr)
                return 130
            _print_table("test runs", result.table)
            ws.add_evaluation(out, dataset=ds.name, runs=list(args.test), metrics=result.summary())
    finally:
        if progress is not None:
            progress.close()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate one or more bundles on runs and print the tables (several: also side by
    side, as the papers' ablation tables)."""
    from rul_core.bundle import load_bundle
    from rul_core.evaluation import ablation_table, evaluate, predictions_frame
    from rul_core.phm2012 import protocol_tables

    check_csv_out(args)
    ws = _workspace(args)
    progress = _progress(args)
    results = {}
    try:
        bundles = {_bundle_label(path, args.model): path for path in args.model}
        trained = {label: load_bundle(path) for label, path in bundles.items()}
        ds = _load(args.data, args.layout, ws, progress)
        runs = _select(ds, args.runs, "runs")
        for label, model in trained.items():
            results[label] = evaluate(model, runs, on=args.on, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    several = len(results) > 1
    for label, result in results.items():
        about = f": {label}" if several else ""
        _print_table(f"per bearing x condition ({args.on}s){about}", result.table)
        if label == next(iter(results)):
            print_units()
        _print_table(f"seen vs unseen conditions{about}", result.seen_unseen)
        try:
            _print_protocol(protocol_tables(trained[label], runs, result.snapshots))
        except RulError as exc:  # e.g. labels that cannot be turned into time without a knee
            print(f"\nPHM 2012 protocol skipped: {exc}")
    if several:
        _print_table("side by side (the papers' ablation table)", ablation_table(results))
    table_path = ""
    if args.out:
        table = (ablation_table(results, flat=True) if several
                 else next(iter(results.values())).table)
        table_path = str(_write_csv_atomic(table, args.out))
        print(f"\ntable written to {table_path}")
    if args.predictions:
        path = _write_csv_atomic(predictions_frame(results), args.predictions)
        print(f"predictions written to {path}")
    for label, result in results.items():
        ws.add_evaluation(bundles[label], dataset=ds.name, runs=[r.name for r in runs],
                          metrics=result.summary(), table_path=table_path)
    return 0


def _bundle_label(path: str, paths: list[str]) -> str:
    """A bundle's name in the tables: its folder name, or the whole path when two share it."""
    name = Path(path).name or path
    return path if sum(Path(p).name == name for p in paths) > 1 else name


def cmd_predict(args: argparse.Namespace) -> int:
    """Per-snapshot RUL and interval of one (partial) run."""
    from rul_core.bundle import load_bundle
    from rul_core.phm2012 import recording_timing, rolling_rul_s
    from rul_core.training import predict_run

    if not 0.0 < args.level < 1.0:
        raise RulError(f"predict: --level: expected an interval level between 0 and 1 "
                       f"(0.9 for a 90 % band), got {args.level:g}")
    check_csv_out(args)
    ws = _workspace(args)
    trained = load_bundle(args.model)
    progress = _progress(args)
    try:
        ds = _load(args.run, args.layout, ws, progress)
        if args.run_name:
            run = _select(ds, [args.run_name], "run-name")[0]
        elif len(ds.runs) == 1:
            run = ds.runs[0]
        else:
            raise RulError(
                f"{args.run}: holds {len(ds.runs)} runs ({', '.join(ds.run_names)}); "
                "name one with --run-name"
            )
        df = predict_run(trained, run, upto=args.upto, level=args.level, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    try:
        df["rul_s"] = rolling_rul_s(df, trained.label_scheme, trained.label_params,
                                    **recording_timing(df, trained.snapshot_every))
    except RulError as exc:  # e.g. fpt labels: the new run's knee is unknown
        print(f"note: no time left (rul_s): {exc}", file=sys.stderr)
        df["rul_s"] = float("nan")
    if args.out:
        print(f"written to {_write_csv_atomic(df, args.out)}", file=sys.stderr)
    else:
        df.to_csv(sys.stdout, index=False, float_format="%.6g")
    return 0


def cmd_phm2012(args: argparse.Namespace) -> int:
    """The PHM 2012 challenge protocol: RUL (s) after the last snapshot of each test run."""
    from rul_core.bundle import load_bundle
    from rul_core.phm2012 import TEST_BY_NAME, WINNER_SCORE, score_runs

    check_csv_out(args)
    if not 0.0 < args.quantile < 1.0:
        raise RulError(f"phm2012: --quantile: expected a quantile between 0 and 1 (0.5: the "
                       f"point estimate), got {args.quantile:g}")
    ws = _workspace(args)
    trained = load_bundle(args.model)
    progress = _progress(args)
    try:
        ds = _load(args.test_set, args.layout, ws, progress)
        runs = _select(ds, args.runs, "runs")
        table = score_runs(trained, runs, quantile=args.quantile, last_k=args.last_k,
                           progress=progress)
    finally:
        if progress is not None:
            progress.close()
    what = "point" if args.quantile == 0.5 else f"{args.quantile:g} quantile"
    _print_table(f"RUL after the last snapshot ({what} estimate, last {args.last_k} "
                 "snapshots)", table)
    for row in table.itertuples():
        known = TEST_BY_NAME.get(row.run)
        if known is not None and row.snapshots != known.truncated_snapshots:
            print(f"\n{row.run}: {row.snapshots} snapshots, but the challenge truncated it at "
                  f"{known.truncated_snapshots}: not scored")
    scored = table["accuracy"].dropna()
    if len(scored):
        print(f"\nscore: {scored.mean():.4f} over {len(scored)} of the challenge's test bearings "
              f"(mean accuracy A; the 2012 academic winner scored {WINNER_SCORE})")
    else:
        print("\nno run matches a challenge test bearing (name and truncated snapshot count): "
              "no score")
    if args.out:
        print(f"table written to {_write_csv_atomic(table, args.out)}", file=sys.stderr)
    return 0


def _metric(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return f"{value:.4g}" if isinstance(value, int | float) else ""


def _missing(path: str) -> str:
    return "" if Path(path).is_dir() else " (missing)"


def _bundle_mark(path: str) -> str:
    """`` (missing)``/`` (damaged: why)`` after a catalogued bundle that does not check out."""
    from rul_core.bundle import bundle_status

    status = bundle_status(path)
    return f" ({status})" if status else ""


def _warn_damaged_rows(rows: list[dict[str, Any]], catalog: Path) -> None:
    """One warning on stderr per catalog row whose JSON is damaged (it is listed anyway)."""
    for r in rows:
        if r.get("problem"):
            print(f"warning: {catalog}: {r['problem']}", file=sys.stderr)


def _rescan(ws: Any, folder: str) -> None:
    """``models --rescan``: catalog the bundles the catalog does not list, saying what was
    added and what was skipped and why."""
    found = ws.rescan_bundles(folder or None)
    for line in found.lines():
        print(line)
    print(found.summary() + "\n")


def cmd_models(args: argparse.Namespace) -> int:
    """List the bundles (marking those gone or damaged) and the cross-validations in the
    workspace catalog (listing creates nothing: no catalog yet, nothing saved); ``--rescan``
    first catalogs the bundles it does not list."""
    from rul_core.workspace import CATALOG_NAME, workspace_path

    rescan = args.rescan
    catalog = workspace_path(args.workspace or None) / CATALOG_NAME
    if not catalog.is_file() and rescan is None:
        print(f"no model bundles: no workspace catalog at {catalog} yet")
        return 0
    ws = _workspace(args)
    if rescan is not None:
        _rescan(ws, rescan)
    else:
        unlisted = ws.uncatalogued_bundles()
        if unlisted:
            print(f"note: {len(unlisted)} bundle folder(s) under {ws.bundles_path} are not in "
                  "the catalog (e.g. a save interrupted before cataloguing it); 'models "
                  "--rescan' checks and adds them", file=sys.stderr)
    rows = ws.list_bundles(args.model_filter)
    _warn_damaged_rows(rows, ws.db_path)
    if not rows:
        print(f"no model bundles in {ws.db_path}")
    else:
        _print_listing(("id", "model", "ablation", "preset", "dataset", "val_rmse", "created",
                        "path"),
                       [(str(r["id"]), r["model"], r["ablation"], r["preset"], r["dataset"],
                         _metric(r["metrics"], "val_rmse"), r["created"],
                         r["path"] + _bundle_mark(r["path"])) for r in rows], args.tsv)
    cvs = ws.list_cross_validations(args.model_filter)
    _warn_damaged_rows(cvs, ws.db_path)
    if cvs:
        print("\ncross-validations (out-of-fold scores)")
        _print_listing(("id", "model", "ablation", "preset", "dataset", "bearings", "rmse",
                        "grid_proxy", "created", "path"),
                       [(str(r["id"]), r["model"], r["ablation"], r["preset"], r["dataset"],
                         str(len(r["runs"])), _metric(r["metrics"], "rmse"),
                         _metric(r["metrics"], "grid_proxy"), r["created"],
                         r["path"] + _missing(r["path"])) for r in cvs], args.tsv)
    return 0


def _print_listing(header: tuple[str, ...], rows: list[tuple[str, ...]], tsv: bool) -> None:
    """A catalog listing: aligned columns (numbers right-aligned), or tab-separated for
    scripts (``--tsv``)."""
    from rul_core.cli.tables import text_table

    if tsv:
        for cells in (header, *rows):
            print("\t".join(cells))
        return
    numeric = {i for i, name in enumerate(header)
               if name in ("id", "val_rmse", "bearings", "rmse", "grid_proxy")}
    print("\n".join(text_table(header, rows, right=numeric)))


# --------------------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace",
        default=None,
        help="workspace folder holding catalog.sqlite (default: $RUL_WORKSPACE or ./workspace)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def on_option(p: argparse.ArgumentParser) -> None:
    """``--on``: metrics over windows or snapshot means (evaluate and crossval)."""
    p.add_argument("--on", choices=("window", "snapshot"), default="window",
                   help="metrics over every window (default) or over each snapshot's mean")


def _layout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--layout", choices=LAYOUTS, default=None,
                   help="force a layout (default: detected)")


def model_and_data_options(p: argparse.ArgumentParser, several_ablations: bool = False) -> None:
    """``--model``, ``--ablation`` (a list with ``several_ablations``), ``--preset``, ``--data``
    and ``--layout`` (shared by train and crossval)."""
    from rul_core.models.presets import ABLATIONS, MODEL_NAMES, PRESETS

    ablations = sorted({a for v in ABLATIONS.values() for a in v})
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    if several_ablations:
        p.add_argument("--ablation", nargs="+", default=["full"], choices=ablations,
                       help="default: full; several: each in turn, then side by side")
    else:
        p.add_argument("--ablation", default="full", choices=ablations, help="default: full")
    p.add_argument("--preset", default="quick", choices=sorted(PRESETS), help="default: quick")
    p.add_argument("--data", required=True, help="dataset folder or archive")
    _layout(p)


def augmentation_options(p: argparse.ArgumentParser) -> None:
    """``--augment-noise KIND [--augment-severity S] [--augment-copies K]``, read back by
    :func:`augmentation` (the CLI's training commands and ``bench/phm2012.py``)."""
    from rul_core.signal.noise import NOISE_KINDS

    p.add_argument("--augment-noise", choices=sorted(NOISE_KINDS), default=None, metavar="KIND",
                   help="also train on noisy copies of every training run: uniform, gaussian "
                        "or salt_and_pepper noise, as in the Noise lab (validation stays clean; "
                        "the same batches per epoch)")
    p.add_argument("--augment-severity", type=float, default=1.0, metavar="S",
                   help="severity of that noise (1: the papers' default amplitude)")
    p.add_argument("--augment-copies", type=int, default=1, metavar="K",
                   help="noisy copies per training run (default 1)")


def training_options(p: argparse.ArgumentParser) -> None:
    """Labels, hyperparameter overrides, epochs, sampling, seed and interval options (shared
    by train and crossval; read back by :func:`model_config` and :func:`training_kwargs`)."""
    from rul_core.models.presets import INTERVALS

    p.add_argument("--labels", default="piecewise", choices=LABEL_SCHEMES,
                   help="RUL label scheme (default: piecewise, the papers'; capped: time left "
                        "up to --label-param max_rul, the PHM 2012 challenge setting)")
    p.add_argument(
        "--label-param",
        action="append",
        metavar="KEY=VALUE",
        help="label scheme parameter, e.g. max_rul=100 for capped, log_scale=30 to compress it "
             "logarithmically (both in snapshots; repeatable)",
    )
    p.add_argument(
        "--hparam",
        action="append",
        metavar="KEY=JSON",
        help="override a preset hyperparameter, e.g. lstm_units=[8,8] (repeatable)",
    )
    p.add_argument("--epochs", type=int, default=None, help="default: the preset's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--patience", type=int, default=10,
                   help="early-stopping patience (epochs); 0: no early stopping, train every "
                        "epoch and keep the last")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="train on every N-th snapshot counted back from each run's last (N times "
                        "fewer windows per epoch; label parameters stay in the recording's "
                        "snapshots); the bundle predicts with the same sampling")
    p.add_argument("--phases", type=int, default=1, metavar="K",
                   help="with --every N: also train on the thinnings that end 1..K-1 snapshots "
                        "before each run's last (K <= N; K times the windows, the same batches "
                        "per epoch)")
    augmentation_options(p)
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches and "
                   "ensemble members (default 0): the same seed retrains the same model")
    p.add_argument("--interval", default="mc_dropout", choices=INTERVALS,
                   help="predictive interval: MC dropout (default) or a deep ensemble of "
                        "--n-members; rc_lstm: its Gaussian head, or an ensemble of them")
    p.add_argument("--n-members", type=int, default=5, help="deep-ensemble size (default 5)")
    p.add_argument("--dataset-kind", choices=("femto", "xjtu"), default=None,
                   help="which paper's hyperparameters (CARLE's Table 6) apply (default: "
                        "from the layout)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add train, evaluate, predict, phm2012 and models."""
    from rul_core.models.presets import MODEL_NAMES

    p = sub.add_parser(
        "train",
        help="train a model and write a bundle",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model_and_data_options(p)
    p.add_argument("--train", nargs="+", metavar="RUN", help="training runs (default: all)")
    val = p.add_mutually_exclusive_group()
    val.add_argument("--val", nargs="+", metavar="RUN",
                     help="validation runs (default: the last training run)")
    val.add_argument("--no-val", action="store_true", help="train without a validation run")
    p.add_argument("--test", nargs="+", metavar="RUN", help="runs held out and evaluated")
    training_options(p)
    p.add_argument("--out", required=True, help="bundle directory to write")
    _common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate bundles on runs and print the tables")
    p.add_argument("--model", required=True, nargs="+", metavar="BUNDLE",
                   help="bundle directory; several: also a side-by-side (ablation) table")
    p.add_argument("--data", required=True, help="dataset folder or archive")
    _layout(p)
    p.add_argument("--runs", nargs="+", metavar="RUN", help="runs to evaluate (default: all)")
    on_option(p)
    p.add_argument("--out", default=None, help="write the per-bearing table as CSV (several "
                   "bundles: the side-by-side table)")
    p.add_argument("--predictions", default=None, metavar="CSV",
                   help="write every bundle's prediction and interval at every snapshot as CSV")
    _common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="RUL and interval at every snapshot of a (partial) run, as CSV",
    )
    p.add_argument("--model", required=True, help="bundle directory")
    p.add_argument("--run", required=True, help="run folder (or a dataset with --run-name)")
    p.add_argument("--run-name", default=None, help="which run when --run holds several")
    _layout(p)
    p.add_argument("--upto", type=int, default=None, help="use only the first N snapshots")
    p.add_argument("--level", type=float, default=0.9,
                   help="central coverage of the interval, between 0 and 1 (default 0.9)")
    p.add_argument("--out", default=None, help="CSV file (default: stdout)")
    _common(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "phm2012",
        help="PHM 2012 challenge: RUL in seconds after each truncated test run, and the score",
        description="Estimate the remaining time (s) after the last snapshot of each run of "
        "--test-set (e.g. the challenge's Test_set folder) and, for runs that are challenge test "
        "bearings truncated as published, score it against the actual RULs of the challenge "
        "(Table 3 of its rules).",
    )
    p.add_argument("--model", required=True, help="bundle directory")
    p.add_argument("--test-set", required=True, help="folder of truncated runs (e.g. Test_set)")
    _layout(p)
    p.add_argument("--runs", nargs="+", metavar="RUN", help="runs to score (default: all)")
    p.add_argument("--quantile", type=float, default=0.5,
                   help="quantile of the predictive band turned into seconds: 0.5 the point "
                        "estimate (default), lower for a cautious, early estimate (the score "
                        "punishes late estimates 4x harder); bench/phm2012.py --quantiles "
                        "chooses one on an answer-free grid")
    p.add_argument("--last-k", type=int, default=5,
                   help="snapshots whose implied lives are pooled (median), default 5")
    p.add_argument("--out", default=None, help="write the table as CSV")
    _common(p)
    p.set_defaults(func=cmd_phm2012)

    p = sub.add_parser("models", help="list the model bundles and cross-validations in the "
                       "workspace catalog")
    p.add_argument("--model", dest="model_filter", default=None, choices=MODEL_NAMES)
    p.add_argument("--rescan", nargs="?", const="", default=None, metavar="FOLDER",
                   help="first catalog the bundle folders under FOLDER (default: the "
                        "workspace's bundles folder) that the catalog does not list, after "
                        "checking their cards and checksums (nothing is loaded); prints what "
                        "was added and what was skipped and why")
    p.add_argument("--tsv", action="store_true",
                   help="tab-separated columns for scripts (default: aligned for reading)")
    _common(p)
    p.set_defaults(func=cmd_models)
