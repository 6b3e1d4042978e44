"""Evaluation tables as in the papers: per bearing x condition, seen vs unseen, ablations.

All RUL values are the normalised RUL of the model's own label scheme. ``score`` is CARLE
eq. 16 with d in percent of life (:func:`rul_core.metrics.score`, ``unit="percent"``), summed
over the predictions of the row; interval columns (PICP, PIAW, AIS at the model's level) and
the alpha-lambda accuracy (fraction of predictions after half-life inside +-30 %) are given
for every model, since every model in the product carries an interval.

A condition is *seen* when some training run has the same rpm and load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rul_core import metrics as mt
from rul_core.data.run import Run
from rul_core.progress import CancelToken, ProgressEvent, ProgressFn, check, emit
from rul_core.training import TrainedModel, aggregate_snapshots, predict_windows

METRIC_COLUMNS = ("rmse", "mae", "score", "alpha_lambda", "picp", "piaw", "ais")
METRIC_UNITS = (
    "rmse, mae, piaw: normalised RUL of the model's label scheme (0 at the last snapshot, 1 at "
    "the start, before the knee or at the cap); score: CARLE eq. 16 summed over the row, errors "
    "in % of that scale (0 best, late estimates cost more); alpha_lambda, picp: fractions "
    "(0-1); ais: average interval score (<= 0, 0 best)"
)  # what the metric columns and ``val_*`` metrics are measured in, for printed tables


@dataclass
class EvaluationResult:
    """Predictions and tables of one model on some runs.

    ``windows``: one row per window (run, condition, rpm, load_n, seen, snapshot, window,
    y_true, rul, lower, upper, std); ``snapshots``: the same averaged per snapshot (+ time_s);
    ``table``: one row per run, then one per condition ("all runs" rows), then "all";
    ``seen_unseen``: metrics over seen and over unseen conditions.
    """

    windows: pd.DataFrame
    snapshots: pd.DataFrame
    table: pd.DataFrame
    seen_unseen: pd.DataFrame
    level: float
    on: str

    def summary(self) -> dict[str, float]:
        """Metrics over every evaluated prediction (the "all" row), as a plain dict."""
        row = self.table[self.table["run"] == "all"].iloc[0]
        return {k: float(row[k]) for k in METRIC_COLUMNS if pd.notna(row[k])}


def _metrics(df: pd.DataFrame, level: float) -> dict[str, Any]:
    y, p = df["y_true"].to_numpy(float), df["rul"].to_numpy(float)
    out: dict[str, Any] = {"n": len(df)}
    out.update(mt.point_metrics(y, p))
    # alpha-lambda is defined along one bearing's time axis: average over runs
    al = [
        mt.alpha_lambda_accuracy(g["y_true"].to_numpy(float), g["rul"].to_numpy(float))
        for _, g in df.groupby("run", sort=False)
    ]
    out["alpha_lambda"] = float(np.mean(al)) if al else np.nan
    if {"lower", "upper"} <= set(df.columns) and df["lower"].notna().all():
        out.update(
            mt.interval_metrics(y, df["lower"].to_numpy(float), df["upper"].to_numpy(float), level)
        )
    return out


# progress: each run counts _STEPS units, the first _FEATURE_SHARE of them its features
_STEPS = 100
_FEATURE_SHARE = 0.8


def _condition_key(rpm: float, load_n: float) -> tuple[float, float]:
    return (round(float(rpm), 6), round(float(load_n), 6))


def evaluate(
    trained: TrainedModel,
    runs: list[Run],
    train_conditions: Iterable[tuple[float, float]] | None = None,
    *,
    level: float | None = None,
    on: str = "window",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> EvaluationResult:
    """Predict every run and build the tables.

    ``train_conditions``: (rpm, load_n) pairs counted as seen (default: the conditions of
    the model's training runs). ``on="window"`` computes metrics over window predictions
    (the papers' protocol); ``on="snapshot"`` over the per-snapshot means. ``progress``
    gets ``evaluate`` events that follow each run's feature extraction (window by window,
    the long part on a long run), then its prediction.
    """
    if on not in ("window", "snapshot"):
        raise ValueError(f"on must be 'window' or 'snapshot', got {on!r}")
    level = trained.level if level is None else float(level)
    seen_set = {
        _condition_key(*c)
        for c in (train_conditions if train_conditions is not None else trained.train_conditions)
    }
    win_frames, snap_frames = [], []
    total = len(runs) * _STEPS
    for i, run in enumerate(runs):
        check(cancel)
        emit(progress, "evaluate", i * _STEPS, total, f"{run.name}: features")

        def features(ev: ProgressEvent, start: int = i * _STEPS, name: str = run.name) -> None:
            if ev.stage == "features":
                emit(progress, "evaluate", start + int(_FEATURE_SHARE * _STEPS * ev.fraction),
                     total, f"{name}: features of {ev.done} / {ev.total} windows"
                     if ev.done < ev.total else f"predicting {name}")

        w = predict_windows(trained, run, level=level, with_labels=True,
                            progress=features if progress is not None else None)
        s = aggregate_snapshots(w, run)
        seen = _condition_key(run.condition.rpm, run.condition.load_n) in seen_set
        for df in (w, s):
            df.insert(0, "run", run.name)
            df.insert(1, "condition", run.condition.label)
            df.insert(2, "rpm", float(run.condition.rpm))
            df.insert(3, "load_n", float(run.condition.load_n))
            df.insert(4, "seen", seen)
        win_frames.append(w)
        snap_frames.append(s)
    emit(progress, "evaluate", total, total, "done")
    return tabulate(pd.concat(win_frames, ignore_index=True),
                    pd.concat(snap_frames, ignore_index=True), level, on)


def tabulate(
    windows: pd.DataFrame, snapshots: pd.DataFrame, level: float, on: str = "window"
) -> EvaluationResult:
    """The tables of an evaluation from its window and snapshot predictions (columns as in
    :class:`EvaluationResult`; each row's ``seen`` already decided), e.g. the out-of-fold
    predictions of a cross-validation pooled over its folds."""
    if on not in ("window", "snapshot"):
        raise ValueError(f"on must be 'window' or 'snapshot', got {on!r}")
    base = windows if on == "window" else snapshots
    rows = []
    for (run, cond), g in base.groupby(["run", "condition"], sort=False):
        rows.append(
            {"run": run, "condition": cond, "seen": bool(g["seen"].iloc[0]), **_metrics(g, level)}
        )
    for cond, g in base.groupby("condition", sort=False):
        rows.append(
            {
                "run": "all runs",
                "condition": cond,
                "seen": bool(g["seen"].all()),
                **_metrics(g, level),
            }
        )
    rows.append({"run": "all", "condition": "all", "seen": None, **_metrics(base, level)})
    table = pd.DataFrame(rows)

    su = []
    for flag, g in base.groupby("seen", sort=True):
        su.append(
            {
                "conditions": "seen" if flag else "unseen",
                "runs": int(g["run"].nunique()),
                **_metrics(g, level),
            }
        )
    seen_unseen = pd.DataFrame(su)
    return EvaluationResult(windows, snapshots, table, seen_unseen, level, on)


# which way each metric improves (picp is best at its nominal level, so it has no direction)
LOWER_IS_BETTER: dict[str, bool] = {"rmse": True, "mae": True, "score": True,
                                    "alpha_lambda": False, "ais": False}
METRIC_NAMES: dict[str, str] = {"rmse": "RMSE", "mae": "MAE", "score": "CARLE score",
                                "alpha_lambda": "alpha-lambda accuracy", "picp": "PICP",
                                "piaw": "PIAW", "ais": "AIS"}


def best_variant(values: pd.DataFrame, lower_is_better: bool) -> pd.Series:
    """Per row of ``values`` (one column per variant), the best variant's name; ties are
    joined with " = ", a row without any value is empty."""
    def pick(row: pd.Series) -> str:
        row = row.dropna()
        if row.empty:
            return ""
        target = row.min() if lower_is_better else row.max()
        return " = ".join(str(v) for v, x in row.items() if np.isclose(x, target, rtol=1e-9))

    return values.apply(pick, axis=1)


def ablation_table(
    results: dict[str, EvaluationResult],
    metrics: tuple[str, ...] = ("rmse", "mae", "score"),
    flat: bool = False,
    best: bool = False,
) -> pd.DataFrame:
    """One row per (condition, run) and per-condition/overall rows; columns (variant, metric).

    ``results`` maps a variant name (e.g. "CARLE", "CARL", "CRLE", "CALE") to its evaluation on
    the same runs, as in the papers' ablation tables. ``flat``: plain columns instead
    (condition, run, then "variant · metric", or just "variant" for a single metric), for
    widgets that show one header row. ``best``: a column ("best", metric) per metric that has
    a direction (:data:`LOWER_IS_BETTER`) naming the best variant of each row.
    """
    if not results:
        raise ValueError("ablation_table: no results given")
    unknown = [m for m in metrics if m not in METRIC_COLUMNS]
    if unknown:
        raise ValueError(f"ablation_table: unknown metric {unknown[0]!r}; expected one of "
                         f"{', '.join(METRIC_COLUMNS)}")
    frames = []
    for variant, res in results.items():
        t = res.table.set_index(["condition", "run"])[list(metrics)]
        t.columns = pd.MultiIndex.from_product([[variant], list(metrics)])
        frames.append(t)
    table = pd.concat(frames, axis=1)
    if best:
        for metric in metrics:
            if metric in LOWER_IS_BETTER:
                values = table.xs(metric, axis=1, level=1)
                table[("best", metric)] = best_variant(values, LOWER_IS_BETTER[metric])
    if flat:
        single = len(metrics) == 1
        table.columns = [variant if single else f"{variant} · {metric}"
                         for variant, metric in table.columns]
        table = table.reset_index()
    return table


#: Columns of :func:`predictions_frame`, in order.
PREDICTION_COLUMNS = ("model", "run", "condition", "seen", "snapshot", "time_s", "y_true",
                      "rul", "lower", "upper", "std", "level")


def predictions_frame(results: Mapping[str, EvaluationResult]) -> pd.DataFrame:
    """Every model's prediction at every evaluated snapshot, one row each (model label, run,
    condition, seen, snapshot, time_s, true and predicted normalised RUL, the interval's
    bounds and its level), for a CSV download or ``evaluate --predictions``."""
    frames = [res.snapshots.assign(model=label, level=res.level)
              for label, res in results.items()]
    if not frames:
        return pd.DataFrame(columns=list(PREDICTION_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    return out[[c for c in PREDICTION_COLUMNS if c in out.columns]]


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A DataFrame as a GitHub markdown table (no tabulate dependency), padded so that its
    columns line up in a terminal too; numeric columns are right-aligned.

    Floats use ``floatfmt``, except magnitudes from 10 000 up, which are rounded to whole
    numbers (18020 s, not 1.802e+04). Missing values (NaN, None) are blank."""
    flat = df.reset_index() if not isinstance(df.index, pd.RangeIndex) else df
    cols = [
        " / ".join(str(c) for c in col if str(c)) if isinstance(col, tuple) else str(col)
        for col in flat.columns
    ]

    def fmt(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float | np.floating):
            if np.isnan(v):
                return ""
            return f"{float(v):.0f}" if 1e4 <= abs(v) < 1e15 else format(float(v), floatfmt)
        return str(v)

    rows = [[fmt(v) for v in row] for row in flat.itertuples(index=False)]
    numeric = [pd.api.types.is_numeric_dtype(flat.iloc[:, j])
               and not pd.api.types.is_bool_dtype(flat.iloc[:, j]) for j in range(len(cols))]
    widths = [max([len(c), 3, *(len(r[j]) for r in rows)]) for j, c in enumerate(cols)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.rjust(w) if right else cell.ljust(w) for cell, w, right
                                 in zip(cells, widths, numeric, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if right else "-" * (w + 2)
                          for w, right in zip(widths, numeric, strict=True)) + "|"
    return "\n".join([line(cols), rule, *(line(r) for r in rows)])
