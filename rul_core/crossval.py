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
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rul_core.atomic import atomic_dir, atomic_path, check_replaceable, write_new_dir, write_text
from rul_core.data.run import Run
from rul_core.errors import InputError, RulError
from rul_core.evaluation import EvaluationResult, evaluate, tabulate
from rul_core.job_progress import CrossValProgress, Estimate, scoring_weight, training_plan
from rul_core.progress import (
    ETA_KEYS,
    OVERALL,
    CancelToken,
    ProgressEvent,
    ProgressFn,
    check,
)
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


def _saved_file(name: str) -> bool:
    """Whether ``name`` is a file :meth:`CrossValidation.save` writes."""
    return name in SAVED_FILES or name == "table.csv"


def check_result_folder(path: str | Path) -> Path:
    """``path`` resolved, if :func:`record` may write a cross-validation there: nothing, an
    empty folder or a saved cross-validation (replaced whole); a file or a folder holding
    other files raises InputError (the CLI checks before training)."""
    return check_replaceable(path, _saved_file, "cross-validation results")


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


class _FoldRelay:
    """Relays the folds' training events to ``progress``, one call at a time (folds may train
    at once, in threads), each with the whole run's progress
    (:class:`rul_core.job_progress.CrossValProgress`): the fraction done (``overall``: each
    fold's training and scoring weighed by their reference costs, finished folds counting
    whole), the whole run's ETA (``eta_s``, ...) and one line of every fold's state as the
    message (the same shape whichever fold reported last); ``label`` "cross-validation".
    The fold (from 1) and the fold's own event (stage, counts, ``extra``: epochs, losses)
    are kept, so the loss curves and the cancel notices still read them."""

    def __init__(self, progress: ProgressFn | None, weights: list[tuple[float, float]],
                 jobs: int) -> None:
        self.progress = progress
        self.n_folds = len(weights)
        self.state = CrossValProgress(weights, jobs)
        self.lock = threading.Lock()

    def _send(self, stage: str, done: int, total: int, extra: dict[str, Any]) -> None:
        """Pass one event on, with the whole run's state (called under the lock)."""
        if self.progress is None:
            return
        overall = self.state.overall()
        estimate = Estimate(0.0) if overall >= 1.0 else self.state.estimate(time.perf_counter())
        self.progress(ProgressEvent(stage, done, total, self.state.line(),
                                    {**extra, **estimate.extra(), OVERALL: overall,
                                     "label": "cross-validation"}))

    def emit(self, stage: str, done: int, total: int) -> None:
        """A cross-validation-level event (not of one fold)."""
        with self.lock:
            self._send(stage, done, total, {})

    def started(self, fold: int, held: Sequence[str]) -> None:
        """Fold ``fold`` (from 0) starts training."""
        with self.lock:
            self.state.started(fold, time.perf_counter(), f"holding out {', '.join(held)}")

    def scoring(self, fold: int, held: Sequence[str]) -> None:
        """Fold ``fold`` trained; its held-out bearings are being scored."""
        with self.lock:
            self.state.scoring(fold, time.perf_counter(), f"scoring {', '.join(held)}")
            self._send("scoring", 0, 1, {"fold": fold + 1})

    def finished(self, fold: int) -> None:
        """Count fold ``fold`` (from 0) as done."""
        with self.lock:
            self.state.finished(fold, time.perf_counter())

    def for_fold(self, fold: int) -> ProgressFn | None:
        """The progress callback of fold ``fold`` (from 0)."""
        if self.progress is None:
            return None

        def relay(event: ProgressEvent) -> None:
            with self.lock:
                self.state.event(fold, event, time.perf_counter())
                extra = {k: v for k, v in event.extra.items() if k not in ETA_KEYS}
                self._send(event.stage, event.done, event.total,
                           {**extra, "fold": fold + 1, "fold_overall": event.extra.get(OVERALL)})

        return relay


class _EitherToken(CancelToken):
    """Cancelled when the user's token is, or when :meth:`cancel` is called on this one (a
    fold failed, so the folds still training stop)."""

    def __init__(self, user: CancelToken | None) -> None:
        super().__init__()
        self._user = user

    @property
    def cancelled(self) -> bool:
        """True once either was cancelled."""
        return super().cancelled or (self._user is not None and self._user.cancelled)


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
    jobs: int = 1,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **train_kwargs: Any,
) -> CrossValidation:
    """Train ``config`` once per fold of :func:`fold_plan` over ``runs`` and score each fold's
    held-out bearings with the model that did not see them.

    ``train_kwargs`` go to :func:`rul_core.training.train` (``label_scheme``, ``label_params``,
    ``epochs``, ``patience``, ``snapshot_every``, ...). ``inner_val``: the last training
    bearing of each fold validates (early stopping, interval calibration) instead of training.
    ``isolate``: each fold trains in a fresh child process. ``jobs`` > 1 (with ``isolate``):
    that many folds train at once, each in its own child process — for a GPU or a machine with
    many cores; the result is the same as one fold at a time. Progress: a "cross-validation"
    event as each fold starts (one at a time) or ends (several at once), and each fold's
    training events with "fold i/n" in their message. Raises :class:`Cancelled` when
    ``cancel`` fires, :class:`InputError` for an impossible plan, and the first failing fold's
    error (the other folds are stopped).
    """
    from rul_core.phm2012 import protocol_tables

    by_name = {r.name: r for r in runs}
    if len(by_name) != len(runs):
        raise InputError("cross-validation: two runs share a name; bearings must be unique")
    if jobs < 1 or (jobs > 1 and not isolate):
        raise InputError(f"cross-validation: jobs must be 1, or more with isolate=True (each "
                         f"fold in its own process), got jobs={jobs}, isolate={isolate}")
    plan = fold_plan(list(by_name), n_folds, seed=split_seed)
    if inner_val and min(len(train) for train, _ in plan) < 2:
        raise InputError("cross-validation: a validation bearing per fold needs at least two "
                         "training bearings in every fold")
    if isolate:
        from rul_core.isolated import train_isolated as fit
    else:
        from rul_core.training import train as fit
    # (fitting, validation) bearings of each fold
    splits = [(train[:-1], train[-1:]) if inner_val else (train, []) for train, _ in plan]
    weights = [
        (training_plan(config, [by_name[n] for n in fit_names],
                       [by_name[n] for n in val_names], isolated=isolate, **train_kwargs
                       ).stages.total,
         scoring_weight(config, [by_name[n] for n in held_names], **train_kwargs))
        for (fit_names, val_names), (_, held_names) in zip(splits, plan, strict=True)]
    relay = _FoldRelay(progress, weights, min(jobs, len(plan)))

    def fit_fold(i: int, token: CancelToken | None) -> tuple[Any, float]:
        fit_names, val_names = splits[i]
        relay.started(i, plan[i][1])
        t0 = time.perf_counter()
        trained = fit(config, [by_name[n] for n in fit_names],
                      val_runs=[by_name[n] for n in val_names] or None,
                      progress=relay.for_fold(i), cancel=token, **train_kwargs)
        return trained, time.perf_counter() - t0

    scored: dict[int, dict[str, Any]] = {}

    def score_fold(i: int, trained: Any, train_s: float) -> None:
        held_names = plan[i][1]
        fit_names, val_names = splits[i]
        held = [by_name[n] for n in held_names]
        relay.scoring(i, held_names)
        result = evaluate(trained, held, on=on, cancel=cancel)
        for df in (result.windows, result.snapshots):
            df.insert(0, "fold", i + 1)
        replay = None
        # labels that do not turn into time (a knee unknown in advance) have no replay
        with contextlib.suppress(RulError):
            replay = protocol_tables(trained, held, result.snapshots)["replayed"]
            replay.insert(0, "fold", i + 1)
        scored[i] = {"result": result, "replay": replay, "row": {
            "fold": i + 1, "held_out": ", ".join(held_names), "training": ", ".join(fit_names),
            "validation": ", ".join(val_names), "epochs": int(trained.metrics["epochs_run"]),
            "train_windows": int(trained.metrics["train_windows"]),
            "final_loss": _final_loss(trained.history), "train_s": train_s,
        }}
        relay.finished(i)

    if jobs == 1 or len(plan) == 1:
        for i in range(len(plan)):
            check(cancel)
            relay.started(i, plan[i][1])
            relay.emit("cross-validation", i, len(plan))
            score_fold(i, *fit_fold(i, cancel))
    else:
        _run_at_once(plan, min(jobs, len(plan)), fit_fold, score_fold, relay, cancel)
    relay.emit("cross-validation", len(plan), len(plan))
    folds = [scored[i] for i in range(len(plan))]
    level = folds[-1]["result"].level
    pooled = tabulate(pd.concat([f["result"].windows for f in folds], ignore_index=True),
                      pd.concat([f["result"].snapshots for f in folds], ignore_index=True),
                      level, on)
    replays = [f["replay"] for f in folds if f["replay"] is not None]
    replay = pd.concat(replays, ignore_index=True) if replays else pd.DataFrame()
    settings = {
        "config": config.to_dict(), "runs": list(by_name), "n_folds": len(plan),
        "split_seed": split_seed, "inner_val": inner_val, "on": on, "level": level,
        "train": {k: v for k, v in train_kwargs.items() if k != "pipeline_config"},
    }
    # plain JSON (numpy scalars from widgets become numbers), as saved and catalogued
    settings = json.loads(json.dumps(settings, default=_plain))
    return CrossValidation(pooled, pd.DataFrame([f["row"] for f in folds]), replay, settings)


def _run_at_once(
    plan: list[Fold], jobs: int, fit_fold: Any, score_fold: Any, relay: _FoldRelay,
    cancel: CancelToken | None,
) -> None:
    """Train the folds of ``plan`` ``jobs`` at a time (a thread each, waiting on its child
    process) and score each in this thread as it ends. The first failure (or the user's
    cancel) stops the folds still training and is raised."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    check(cancel)
    stop = _EitherToken(cancel)
    relay.emit("cross-validation", 0, len(plan))
    with ThreadPoolExecutor(jobs, thread_name_prefix="rul-fold") as pool:
        futures = {pool.submit(fit_fold, i, stop): i for i in range(len(plan))}
        done = 0
        try:
            for future in as_completed(futures):
                i = futures[future]
                score_fold(i, *future.result())
                done += 1
                if done < len(plan):  # the last one is the caller's "done"
                    relay.emit("cross-validation", done, len(plan))
        except BaseException:
            stop.cancel()  # the pool's exit waits for the folds still training: stop them
            raise


def _plain(value: Any) -> Any:
    """JSON fallback: a numpy scalar's Python value, a settings object's ``to_dict()``
    (a noise augmentation), else the text of the value."""
    if hasattr(value, "item"):
        return value.item()
    return value.to_dict() if hasattr(value, "to_dict") else str(value)


def record(result: CrossValidation, workspace: Any, dataset: str = "",
           out: str | Path | None = None) -> Path:
    """Save ``result`` (:meth:`CrossValidation.save`) and add it to ``workspace``'s catalog.
    The files are written into a temporary folder that takes its name once complete, so a
    crash leaves no half-written result for the catalog (or a reader) to find. The folder
    defaults to a new ``<workspace>/crossval/<model>-<ablation>-<time>`` (``-2``, ... when
    another process took that name); an ``out`` holding a saved cross-validation is replaced
    whole (:func:`check_result_folder`)."""
    config = result.settings.get("config", {})
    name, ablation = config.get("name", "model"), config.get("ablation", "full")
    if out is None:
        folder = write_new_dir(workspace.path / "crossval",
                               f"{name}-{ablation}-{time.strftime('%Y%m%d-%H%M%S')}", result.save)
    else:
        folder = check_result_folder(out)
        with atomic_dir(folder) as tmp:
            result.save(tmp)
    workspace.add_cross_validation(folder, model=name, ablation=ablation,
                                   preset=config.get("preset", ""), dataset=dataset,
                                   runs=list(result.settings.get("runs", [])),
                                   config=result.settings, metrics=result.summary())
    return folder
