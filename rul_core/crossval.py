"""Cross-validation over bearings: every fold trains on some bearings and is scored on others.

Windows of one bearing overlap and share its history, so folds are made of whole bearings
(:func:`fold_plan`: leave-one-bearing-out, or k groups). Each fold trains a fresh model with the
same settings — in a spawned child process by default (:func:`rul_core.isolated.train_isolated`,
so the memory TensorFlow keeps after each fit does not add up over the folds) — and predicts
its held-out bearings. The out-of-fold predictions of all folds are pooled into one
evaluation (:func:`rul_core.evaluation.tabulate`): every bearing is scored by a model that never
saw it, which is how the model will meet a new machine. A held-out bearing's condition is
*seen* when a training bearing of its own fold ran at the same speed and load. Capped or
otherwise time-convertible labels also get the PHM 2012 replay of each held-out bearing
(:func:`rul_core.phm2012.protocol_tables`): the challenge's accuracy at the test bearings' cuts
(``proxy``) and at an answer-free grid of cuts (``grid_proxy``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rul_core.atomic import atomic_path, write_text
from rul_core.data.run import Run
from rul_core.errors import InputError, RulError
from rul_core.evaluation import EvaluationResult, evaluate, tabulate
from rul_core.progress import CancelToken, ProgressEvent, ProgressFn, check, emit
from rul_core.training import grouped_kfold, leave_one_bearing_out

Fold = tuple[list[str], list[str]]


def fold_plan(run_names: Sequence[str], n_folds: int | None = None, seed: int = 0) -> list[Fold]:
    """(training, held-out) bearing names of each fold: leave-one-bearing-out when
    ``n_folds`` is None or the number of bearings, else ``n_folds`` seeded groups of bearings
    (:func:`rul_core.training.grouped_kfold`)."""
    names = list(run_names)
    if n_folds is None or n_folds == len(names):
        return leave_one_bearing_out(names)
    if n_folds < 2 or n_folds > len(names):
        raise InputError(f"cross-validation: folds must lie between 2 and the number of "
                         f"bearings ({len(names)}), got {n_folds}")
    return grouped_kfold(names, n_folds, seed=seed)


@dataclass
class CrossValidation:
    """Out-of-fold predictions and tables of one cross-validation.

    ``evaluation``: the pooled out-of-fold predictions (its ``windows``/``snapshots`` carry a
    ``fold`` column) and their tables, per bearing x condition and seen vs unseen;
    ``folds``: one row per fold (training and held-out bearings, epochs run, training windows
    and seconds, final training loss); ``replay``: the PHM 2012 replay of every held-out bearing
    (empty when the labels cannot be turned into time); ``settings``: the model configuration
    and training settings, as JSON-ready values.
    """

    evaluation: EvaluationResult
    folds: pd.DataFrame
    replay: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """Pooled out-of-fold metrics, plus the mean PHM 2012 replay proxies when there are."""
        out = self.evaluation.summary()
        for column in ("proxy", "grid_proxy"):
            if column in self.replay and len(self.replay):
                out[column] = float(self.replay[column].mean())
        return out

    def save(self, folder: str | Path) -> Path:
        """Write the result into ``folder``, each file atomically, and return the folder:
        ``windows.csv`` and ``predictions.csv`` (out-of-fold window and snapshot predictions),
        ``folds.csv``, ``replay.csv``, ``table.csv`` (per bearing x condition, for reading) and
        ``summary.json`` (pooled metrics and settings). :func:`load` reads it back."""
        out = Path(folder).resolve()
        out.mkdir(parents=True, exist_ok=True)
        frames = {"windows": self.evaluation.windows, "predictions": self.evaluation.snapshots,
                  "folds": self.folds, "replay": self.replay, "table": self.evaluation.table}
        for name, df in frames.items():
            with atomic_path(out / f"{name}.csv") as tmp:
                df.to_csv(tmp, index=False, na_rep=MISSING)  # "" stays an empty text
        write_text(out / "summary.json",
                   json.dumps({"summary": self.summary(), "settings": self.settings}, indent=2))
        return out


#: The files :meth:`CrossValidation.save` writes and :func:`load` needs.
SAVED_FILES = ("windows.csv", "predictions.csv", "folds.csv", "replay.csv", "summary.json")


#: How a saved table writes a missing number.
MISSING = "nan"


def _read_csv(path: Path) -> pd.DataFrame:
    """A saved table (an empty file, e.g. no replay, is an empty table)."""
    try:
        return pd.read_csv(path, keep_default_na=False, na_values=[MISSING])
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (OSError, ValueError) as exc:
        raise RulError(f"{path}: not a readable CSV table ({exc})") from exc


def load(folder: str | Path) -> CrossValidation:
    """A cross-validation saved by :meth:`CrossValidation.save` (CSV and JSON only; the tables
    are rebuilt from the saved predictions). Raises :class:`RulError` naming a missing or
    unreadable file."""
    root = Path(folder)
    missing = [name for name in SAVED_FILES if not (root / name).is_file()]
    if missing:
        raise RulError(f"{root}: not a saved cross-validation: {', '.join(missing)} missing "
                       f"(expected {', '.join(SAVED_FILES)})")
    try:
        saved = json.loads((root / "summary.json").read_text())
        settings = dict(saved["settings"])
        level, on = float(settings["level"]), str(settings["on"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RulError(f"{root / 'summary.json'}: expected the settings of a cross-validation "
                       f"with its level and 'on' ({exc!r})") from exc
    evaluation = tabulate(_read_csv(root / "windows.csv"), _read_csv(root / "predictions.csv"),
                          level, on)
    return CrossValidation(evaluation, _read_csv(root / "folds.csv"),
                           _read_csv(root / "replay.csv"), settings)


def _fold_progress(progress: ProgressFn | None, fold: int, n_folds: int) -> ProgressFn | None:
    """Events of one fold's training, their message prefixed "fold i/n", with the fold (from 1)
    and the fraction of the whole cross-validation done (``overall``) in ``extra``; the stage
    is kept, so a progress bar per stage serves every fold."""
    if progress is None:
        return None

    def relay(event: ProgressEvent) -> None:
        message = f"fold {fold + 1}/{n_folds}" + (f" · {event.message}" if event.message else "")
        overall = (fold + event.fraction) / n_folds
        progress(ProgressEvent(event.stage, event.done, event.total, message,
                               {**event.extra, "fold": fold + 1, "overall": overall}))

    return relay


def _final_loss(history: list[dict[str, list[float]]]) -> float:
    """The last epoch's training loss (the first ensemble member's), NaN when unknown."""
    losses = history[0].get("loss", []) if history else []
    return float(losses[-1]) if losses else float("nan")


def cross_validate(
    config: Any,
    runs: Sequence[Run],
    *,
    n_folds: int | None = None,
    split_seed: int = 0,
    inner_val: bool = False,
    on: str = "window",
    isolate: bool = True,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **train_kwargs: Any,
) -> CrossValidation:
    """Train ``config`` once per fold of :func:`fold_plan` over ``runs`` and score each fold's
    held-out bearings with the model that did not see them.

    ``train_kwargs`` go to :func:`rul_core.training.train` (``label_scheme``, ``label_params``,
    ``epochs``, ``patience``, ``snapshot_every``, ...). ``inner_val``: the last training
    bearing of each fold validates (early stopping, interval calibration) instead of training.
    ``isolate``: each fold trains in a fresh child process. Progress: one "cross-validation"
    event per fold, and each fold's training events with "fold i/n" in their message. Raises
    :class:`Cancelled` when ``cancel`` fires and :class:`InputError` for an impossible plan.
    """
    from rul_core.phm2012 import protocol_tables

    by_name = {r.name: r for r in runs}
    if len(by_name) != len(runs):
        raise InputError("cross-validation: two runs share a name; bearings must be unique")
    plan = fold_plan(list(by_name), n_folds, seed=split_seed)
    if inner_val and min(len(train) for train, _ in plan) < 2:
        raise InputError("cross-validation: a validation bearing per fold needs at least two "
                         "training bearings in every fold")
    if isolate:
        from rul_core.isolated import train_isolated as fit
    else:
        from rul_core.training import train as fit
    windows, snapshots, replays, fold_rows = [], [], [], []
    for i, (train_names, held_names) in enumerate(plan):
        check(cancel)
        emit(progress, "cross-validation", i, len(plan),
             f"fold {i + 1}/{len(plan)}: holding out {', '.join(held_names)}")
        fit_names, val_names = train_names, []
        if inner_val:
            fit_names, val_names = train_names[:-1], train_names[-1:]
        t0 = time.perf_counter()
        trained = fit(config, [by_name[n] for n in fit_names],
                      val_runs=[by_name[n] for n in val_names] or None,
                      progress=_fold_progress(progress, i, len(plan)), cancel=cancel,
                      **train_kwargs)
        train_s = time.perf_counter() - t0
        held = [by_name[n] for n in held_names]
        result = evaluate(trained, held, on=on, cancel=cancel)
        for frames, df in ((windows, result.windows), (snapshots, result.snapshots)):
            df.insert(0, "fold", i + 1)
            frames.append(df)
        # labels that do not turn into time (a knee unknown in advance) have no replay
        with contextlib.suppress(RulError):
            replay = protocol_tables(trained, held, result.snapshots)["replayed"]
            replay.insert(0, "fold", i + 1)
            replays.append(replay)
        fold_rows.append({
            "fold": i + 1, "held_out": ", ".join(held_names), "training": ", ".join(fit_names),
            "validation": ", ".join(val_names), "epochs": int(trained.metrics["epochs_run"]),
            "train_windows": int(trained.metrics["train_windows"]),
            "final_loss": _final_loss(trained.history), "train_s": train_s,
        })
        del trained
    emit(progress, "cross-validation", len(plan), len(plan), "done")
    pooled = tabulate(pd.concat(windows, ignore_index=True),
                      pd.concat(snapshots, ignore_index=True), result.level, on)
    replay = pd.concat(replays, ignore_index=True) if replays else pd.DataFrame()
    settings = {
        "config": config.to_dict(), "runs": list(by_name), "n_folds": len(plan),
        "split_seed": split_seed, "inner_val": inner_val, "on": on, "level": result.level,
        "train": {k: v for k, v in train_kwargs.items() if k != "pipeline_config"},
    }
    # plain JSON (numpy scalars from widgets become numbers), as saved and catalogued
    settings = json.loads(json.dumps(settings, default=_plain))
    return CrossValidation(pooled, pd.DataFrame(fold_rows), replay, settings)


def _plain(value: Any) -> Any:
    """JSON fallback: a numpy scalar's Python value, else the text of the value."""
    return value.item() if hasattr(value, "item") else str(value)


def record(result: CrossValidation, workspace: Any, dataset: str = "",
           out: str | Path | None = None) -> Path:
    """Save ``result`` (:meth:`CrossValidation.save`) and add it to ``workspace``'s catalog;
    the folder defaults to ``<workspace>/crossval/<model>-<ablation>-<time>`` (a new one)."""
    config = result.settings.get("config", {})
    name, ablation = config.get("name", "model"), config.get("ablation", "full")
    if out is None:
        base = workspace.path / "crossval" / f"{name}-{ablation}-{time.strftime('%Y%m%d-%H%M%S')}"
        out, n = base, 1
        while out.exists():
            n += 1
            out = base.with_name(f"{base.name}-{n}")
    folder = result.save(out)
    workspace.add_cross_validation(folder, model=name, ablation=ablation,
                                   preset=config.get("preset", ""), dataset=dataset,
                                   runs=list(result.settings.get("runs", [])),
                                   config=result.settings, metrics=result.summary())
    return folder
