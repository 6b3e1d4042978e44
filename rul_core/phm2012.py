"""The IEEE PHM 2012 challenge protocol: one RUL in seconds at the end of a truncated run.

The challenge (``../shared/data/real/femto/IEEEPHM2012-Challenge-Details.pdf``) trains on the
six FEMTO learning bearings and asks, for each of eleven test bearings whose recording stops
before failure, the remaining time to failure after the last recorded snapshot; the score is
the mean of :func:`rul_core.metrics.phm2012_accuracy` over the eleven (SPEC §5).

A model here predicts a *normalised* RUL per snapshot. :func:`estimate_rul_s` turns the
predictions of a truncated run into seconds by inverting the label scheme
(:func:`rul_core.labels.remaining_time`): each of the last ``last_k`` snapshots implies a
total life; their median minus the elapsed time is the estimate, which damps the
window-to-window noise of a single snapshot.

The score punishes a late estimate four times harder than an early one (A halves at 5 % late,
20 % early), so a lower quantile of the (calibrated) predictive band may score better than the
point estimate: :func:`rul_core.training.quantile_band` picks one; ``bench/phm2012.py
--quantiles`` measures which on the answer-free grid (on the learning set it mattered for a
model that estimates late, and little otherwise: README).

:func:`truncation_proxy` replays the protocol on a complete run (a held-out learning bearing):
it cuts the run where each test bearing was cut, as a fraction of that bearing's life, and
scores the estimates against the known remaining time — the closest measurement of the
challenge score that the learning set allows. Settings are chosen on :func:`grid_cuts`, which
use nothing from the challenge's answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rul_core import labels as lb
from rul_core import metrics as mt
from rul_core.data.run import Run
from rul_core.errors import RulError
from rul_core.progress import CancelToken, ProgressFn, check, emit
from rul_core.training import quantile_band

SNAPSHOT_INTERVAL_S = 10.0
DEFAULT_LAST_K = 5

#: Published score of the academic winner (Sutrisno, Oh, Vasan, Pecht, CALCE, PHM 2012).
WINNER_SCORE = 0.3066

#: Training settings of the README's challenge command, chosen on the answer-free grid proxy
#: of ``bench/phm2012.py`` (README): RC-LSTM at the quick preset, capped labels of 50 min,
#: every 6th snapshot (one phase), a fixed budget of 5 epochs, no validation bearing (train
#: on all six), a seed ensemble of five (session 13: the same grid proxy as three members on
#: average, without the spread between draws of three seeds, and a better worst bearing).
#: The Train page applies them with one button.
CHALLENGE_TRAINING: dict[str, Any] = {
    "model": "rc_lstm", "ablation": "full", "preset": "quick", "label_scheme": "capped",
    "cap_minutes": 50.0, "log_scale_minutes": 0.0, "snapshot_every": 6, "snapshot_phases": 1,
    "epochs": 5, "patience": 0, "interval": "ensemble", "n_members": 5, "validation": False,
    "hparams": {},
}


@dataclass(frozen=True)
class TestBearing:
    """One challenge test bearing: its truncated recording and the RUL to be estimated."""

    name: str
    condition: int
    recorded_s: float  # recording duration of the truncated run (PDF Appendix A.5)
    actual_rul_s: float  # PDF Table 3

    @property
    def truncated_snapshots(self) -> int:
        """Snapshots in the truncated Test_set folder (one every 10 s, the first at 0 s)."""
        return round(self.recorded_s / SNAPSHOT_INTERVAL_S) + 1

    @property
    def life_fraction(self) -> float:
        """Fraction of the bearing's life elapsed at the truncation point."""
        n = self.truncated_snapshots
        return n / (n + self.actual_rul_s / SNAPSHOT_INTERVAL_S)


#: The eleven test bearings: recording durations of Appendix A.5, actual RULs of Table 3.
TEST_BEARINGS: tuple[TestBearing, ...] = (
    TestBearing("Bearing1_3", 1, 18010, 5730),
    TestBearing("Bearing1_4", 1, 11380, 339),
    TestBearing("Bearing1_5", 1, 23010, 1610),
    TestBearing("Bearing1_6", 1, 23010, 1460),
    TestBearing("Bearing1_7", 1, 15010, 7570),
    TestBearing("Bearing2_3", 2, 12010, 7530),
    TestBearing("Bearing2_4", 2, 6110, 1390),
    TestBearing("Bearing2_5", 2, 20010, 3090),
    TestBearing("Bearing2_6", 2, 5710, 1290),
    TestBearing("Bearing2_7", 2, 1710, 580),
    TestBearing("Bearing3_3", 3, 3510, 820),
)
TEST_BY_NAME = {b.name: b for b in TEST_BEARINGS}


def snapshot_interval_s(time_s: np.ndarray, interval_s: float | None = None) -> float:
    """``interval_s``, or by default the median spacing of ``time_s`` (10 s with one snapshot);
    refused unless > 0."""
    t = np.asarray(time_s, dtype=np.float64)
    if interval_s is None:
        interval_s = float(np.median(np.diff(t))) if t.size > 1 else SNAPSHOT_INTERVAL_S
    if not interval_s > 0:
        raise RulError(f"elapsed time: the snapshot interval must be > 0 s, got {interval_s}")
    return float(interval_s)


def elapsed_s(
    time_s: np.ndarray, interval_s: float | None = None, first_snapshot: int = 0
) -> np.ndarray:
    """Seconds since the run started at each snapshot, counting the first snapshot's interval.

    ``interval_s`` defaults to the median spacing of ``time_s`` (10 s for FEMTO).
    ``first_snapshot``: the recording index of ``time_s[0]`` when the times are a thinned run's
    (:meth:`rul_core.data.run.Run.every_nth`), whose earlier snapshots also count.
    """
    t = np.asarray(time_s, dtype=np.float64)
    if t.size == 0:
        raise RulError("elapsed time: no snapshots")
    return t - t[0] + (int(first_snapshot) + 1) * snapshot_interval_s(t, interval_s)


def implied_lives(
    rul: np.ndarray,
    time_s: np.ndarray,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    interval_s: float | None = None,
    first_snapshot: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(total life implied at each snapshot, elapsed time there), both in seconds.

    Life = elapsed + :func:`rul_core.labels.remaining_time` of the snapshot's normalised RUL.
    ``interval_s`` is the length of one label step of the ``capped`` scheme and the first
    snapshot's share of the elapsed time (default: the median spacing of the given snapshots).
    A run thinned *before labelling* (labels counted in its own snapshots) passes nothing;
    predictions of a model trained with ``snapshot_every`` N, whose labels count the
    recording's snapshots, pass the recording's interval and their first snapshot's index
    (:func:`recording_timing`).
    """
    r = np.asarray(rul, dtype=np.float64)
    if r.size == 0 or r.size != np.asarray(time_s).size:
        raise RulError(f"RUL estimate: {r.size} predictions for {np.asarray(time_s).size} times")
    e = elapsed_s(time_s, interval_s, first_snapshot)
    params = dict(label_params or {})
    if label_scheme == "capped" and "interval_s" not in params:
        params["interval_s"] = snapshot_interval_s(time_s, interval_s)
    try:
        return e + lb.remaining_time(r, e, label_scheme, **params), e
    except ValueError as exc:
        raise RulError(f"time left from '{label_scheme}' labels: {exc}") from exc


def recording_timing(predictions: pd.DataFrame, snapshot_every: int = 1) -> dict[str, Any]:
    """``interval_s`` and ``first_snapshot`` (keyword arguments of :func:`implied_lives` and
    the functions built on it) for ``predict_run`` output of a model trained on every N-th
    snapshot: the recording's interval is the rows' median spacing / N, and the first row's
    ``snapshot`` counts the recording's earlier snapshots. Both defaults when N = 1."""
    n = int(snapshot_every)
    if n == 1 or len(predictions) == 0:
        return {"interval_s": None, "first_snapshot": 0}
    t = predictions["time_s"].to_numpy(dtype=np.float64)
    step = float(np.median(np.diff(t))) / n if t.size > 1 else None
    return {"interval_s": step, "first_snapshot": int(predictions["snapshot"].iloc[0])}


def estimate_rul_s(
    rul: np.ndarray,
    time_s: np.ndarray,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    last_k: int = DEFAULT_LAST_K,
    interval_s: float | None = None,
    first_snapshot: int = 0,
) -> float:
    """RUL in seconds after the last of the given snapshots.

    ``rul``/``time_s``: the per-snapshot normalised RUL predictions (e.g. ``predict_run``'s
    ``rul`` or ``lower`` column) and snapshot times of the run so far. Each of the last
    ``last_k`` snapshots implies a total life (:func:`implied_lives`); the estimate is their
    median minus the elapsed time at the last snapshot, never below 0.
    """
    if int(last_k) < 1:
        raise RulError(f"RUL estimate: last_k must be >= 1, got {last_k}")
    life, e = implied_lives(rul, time_s, label_scheme, label_params, interval_s, first_snapshot)
    recent = life[-int(last_k):]
    recent = recent[np.isfinite(recent)]
    if recent.size == 0:
        return float("nan")
    return float(max(0.0, np.median(recent) - e[-1]))


def challenge_cuts() -> list[tuple[str, float]]:
    """Where the challenge cut its test bearings: (name, fraction of life elapsed).

    These fractions are computed from the published answers (Table 3): use them to *estimate*
    the challenge score, and :func:`grid_cuts` to choose settings, or the choice learns from
    the answers.
    """
    return [(b.name, b.life_fraction) for b in TEST_BEARINGS]


def grid_cuts(low: float = 0.5, high: float = 0.98, n: int = 13) -> list[tuple[str, float]]:
    """Evenly spaced cuts over the late life (default 50 % .. 98 % elapsed), no answers used."""
    return [(f"{f:.0%}", float(f)) for f in np.linspace(low, high, int(n))]


def truncation_index(n_snapshots: int, life_fraction: float) -> int:
    """0-based index of the snapshot where ``life_fraction`` of an ``n_snapshots`` run elapsed."""
    j = round(life_fraction * n_snapshots) - 1
    return min(max(j, 0), n_snapshots - 2)


def truncation_proxy(
    snapshots: pd.DataFrame,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    column: str = "rul",
    last_k: int = DEFAULT_LAST_K,
    interval_s: float | None = None,
    cuts: Sequence[tuple[str, float]] | None = None,
    first_snapshot: int = 0,
) -> pd.DataFrame:
    """The challenge protocol replayed on one complete run's per-snapshot predictions.

    ``snapshots``: ``predict_run`` output of a whole run to failure (``snapshot``, ``time_s``
    and ``column``); every prediction at snapshot j depends only on snapshots <= j, so cutting
    the table is cutting the run. ``cuts``: (name, life fraction) pairs, default
    :func:`challenge_cuts`. ``interval_s``, ``first_snapshot``: as in :func:`implied_lives`
    (:func:`recording_timing` for a model trained on every N-th snapshot). One row per cut:
    where, the true and estimated RUL (s), the percent error Er and the accuracy A.
    """
    df = snapshots.sort_values("snapshot").reset_index(drop=True)
    n = len(df)
    if n < 3:
        raise RulError(f"truncation proxy: need >= 3 snapshots, got {n}")
    t = df["time_s"].to_numpy(dtype=np.float64)
    r = df[column].to_numpy(dtype=np.float64)
    e = elapsed_s(t, interval_s, first_snapshot)
    rows = []
    for name, fraction in challenge_cuts() if cuts is None else cuts:
        j = truncation_index(n, fraction)
        actual = float(t[-1] - t[j])
        est = estimate_rul_s(r[: j + 1], t[: j + 1], label_scheme, label_params, last_k,
                             interval_s, first_snapshot)
        acc = float(mt.phm2012_accuracy(np.array([actual]), np.array([est]))[0])
        rows.append({
            "as": name, "life_fraction": fraction, "snapshot": j,
            "elapsed_s": float(e[j]), "actual_rul_s": actual, "estimate_rul_s": est,
            "er_percent": 100.0 * (actual - est) / actual, "accuracy": acc,
        })
    return pd.DataFrame(rows)


def score_prediction(
    run_name: str,
    n_snapshots: int,
    predictions: pd.DataFrame,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    snapshot_every: int = 1,
    column: str = "rul",
    last_k: int = DEFAULT_LAST_K,
) -> dict[str, Any]:
    """One row of :func:`score_runs` from a run's per-snapshot predictions.

    ``predictions``: ``predict_run`` output (or one run's rows of an evaluation's snapshot
    table) of a run recorded up to its ``n_snapshots``-th snapshot, by a model trained on every
    ``snapshot_every``-th snapshot with ``label_scheme``. The run is scored against the
    published actual RUL when it is named like a challenge test bearing and holds exactly its
    truncated snapshot count; otherwise ``actual_rul_s``, ``er_percent`` and ``accuracy`` are
    NaN.
    """
    pred = predictions.sort_values("snapshot")
    t = pred["time_s"].to_numpy(dtype=np.float64)
    timing = recording_timing(pred, snapshot_every)
    est = estimate_rul_s(pred[column].to_numpy(), t, label_scheme, label_params, last_k,
                         **timing)
    known = TEST_BY_NAME.get(run_name)
    actual = float("nan")
    if known is not None and int(n_snapshots) == known.truncated_snapshots:
        actual = float(known.actual_rul_s)
    er = 100.0 * (actual - est) / actual if np.isfinite(actual) else float("nan")
    acc = (float(mt.phm2012_accuracy(np.array([actual]), np.array([est]))[0])
           if np.isfinite(actual) and np.isfinite(est) else float("nan"))
    return {
        "run": run_name, "snapshots": int(n_snapshots),
        "elapsed_s": float(elapsed_s(t, **timing)[-1]),
        "last_rul": float(pred[column].iloc[-1]), "estimate_rul_s": est,
        "actual_rul_s": actual, "er_percent": er, "accuracy": acc,
    }


def score_runs(
    trained: Any,
    runs: Sequence[Run],
    quantile: float = 0.5,
    last_k: int = DEFAULT_LAST_K,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> pd.DataFrame:
    """One RUL estimate (s) after the last snapshot of each run, scored where the answer is known.

    A run named like a challenge test bearing and holding exactly its truncated snapshot count
    is scored against the published actual RUL (``actual_rul_s``, ``er_percent``,
    ``accuracy``); other runs get NaN there (:func:`score_prediction`). ``quantile`` picks the
    per-snapshot prediction (:func:`rul_core.training.quantile_band`: 0.5 the point estimate,
    lower for a cautious, early estimate).
    """
    from rul_core.training import DEFAULT_LEVEL, predict_run

    level, column = quantile_band(quantile)
    rows = []
    for i, run in enumerate(runs):
        check(cancel)
        emit(progress, "phm2012", i, len(runs), f"predicting {run.name}")
        pred = predict_run(trained, run, level=DEFAULT_LEVEL if level is None else level)
        rows.append(score_prediction(run.name, run.n_snapshots, pred, trained.label_scheme,
                                     trained.label_params, trained.snapshot_every, column,
                                     last_k))
    emit(progress, "phm2012", len(runs), len(runs), "done")
    return pd.DataFrame(rows)


def replay_runs(
    snapshots: pd.DataFrame,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    snapshot_every: int = 1,
    column: str = "rul",
    last_k: int = DEFAULT_LAST_K,
) -> pd.DataFrame:
    """The challenge replayed on runs recorded up to failure, one row per run.

    ``snapshots``: an evaluation's snapshot table (``run``, ``snapshot``, ``time_s``,
    ``column``) of a model trained on every ``snapshot_every``-th snapshot. Each run is cut
    where each test bearing was cut (:func:`truncation_proxy`); ``proxy`` is the mean accuracy
    over those eleven cuts, ``grid_proxy`` over :func:`grid_cuts`, ``worst`` the lowest
    accuracy of either. Runs with fewer than 3 snapshot rows are left out.
    """
    rows = []
    for name, pred in snapshots.groupby("run", sort=False):
        if len(pred) < 3:
            continue
        pred = pred.sort_values("snapshot")
        timing = recording_timing(pred, snapshot_every)
        cut = truncation_proxy(pred, label_scheme, label_params, column, last_k, **timing)
        grid = truncation_proxy(pred, label_scheme, label_params, column, last_k,
                                cuts=grid_cuts(), **timing)
        rows.append({
            "run": name, "snapshots": len(pred),
            "proxy": float(cut["accuracy"].mean()), "grid_proxy": float(grid["accuracy"].mean()),
            "worst": float(min(cut["accuracy"].min(), grid["accuracy"].min())),
        })
    return pd.DataFrame(rows, columns=["run", "snapshots", "proxy", "grid_proxy", "worst"])


def protocol_tables(
    trained: Any, runs: Sequence[Run], snapshots: pd.DataFrame
) -> dict[str, Any]:
    """The PHM 2012 challenge protocol on an evaluation's snapshot predictions.

    ``runs``: the evaluated runs; ``snapshots``: the evaluation's snapshot table (point
    estimates). A run named like a challenge test bearing and holding exactly the snapshots the
    challenge kept is ``scored`` against the published actual RUL. Every other run is taken as
    recorded up to failure, like the rest of the evaluation, and ``replayed``: cut where each
    test bearing was cut, and at an answer-free grid of cuts (:func:`replay_runs`); ``notes``
    names the runs called like a test bearing but of another length (a Full_Test_Set run, a
    partial copy, demo data). ``winner``: the 2012 academic winner's score.
    """
    scored, notes, to_failure = [], [], []
    for run in runs:
        rows = snapshots[snapshots["run"] == run.name]
        known = TEST_BY_NAME.get(run.name)
        if known is not None and run.n_snapshots == known.truncated_snapshots:
            if len(rows):
                scored.append(score_prediction(run.name, run.n_snapshots, rows,
                                               trained.label_scheme, trained.label_params,
                                               trained.snapshot_every))
            continue
        if known is not None:
            notes.append(f"{run.name}: {run.n_snapshots} snapshots, not the "
                         f"{known.truncated_snapshots} the challenge kept: not scored against "
                         "the challenge's answer, replayed as a run recorded to failure")
        to_failure.append(run.name)
    replayed = replay_runs(snapshots[snapshots["run"].isin(to_failure)], trained.label_scheme,
                           trained.label_params, trained.snapshot_every)
    return {"scored": pd.DataFrame(scored), "replayed": replayed, "notes": notes,
            "winner": WINNER_SCORE}


def rolling_rul_s(
    snapshots: pd.DataFrame,
    label_scheme: str,
    label_params: dict[str, Any] | None = None,
    column: str = "rul",
    last_k: int = DEFAULT_LAST_K,
    interval_s: float | None = None,
    first_snapshot: int = 0,
) -> np.ndarray:
    """:func:`estimate_rul_s` at every snapshot of ``predict_run`` output, using only the past
    (one rolling median of the implied lives: the same numbers, without a loop).
    ``interval_s``, ``first_snapshot``: as in :func:`implied_lives`."""
    if len(snapshots) == 0:
        return np.zeros(0)
    life, e = implied_lives(snapshots[column].to_numpy(dtype=np.float64),
                            snapshots["time_s"].to_numpy(dtype=np.float64), label_scheme,
                            label_params, interval_s, first_snapshot)
    median = pd.Series(life).rolling(int(last_k), min_periods=1).median().to_numpy()
    return np.maximum(median - e, 0.0)
