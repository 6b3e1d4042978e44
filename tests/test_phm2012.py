"""PHM 2012 protocol: label inversion to seconds, truncation replay, scoring of test runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rul_core import labels as lb
from rul_core import phm2012 as ph
from rul_core.errors import RulError


def test_remaining_time_hand_values() -> None:
    assert lb.remaining_time(0.5, 100.0, "linear") == pytest.approx(100.0)
    # piecewise f = 0.3: RUL = e r (1-f) / (1 - r (1-f)) = 100 * 0.35 / 0.65
    assert lb.remaining_time(0.5, 100.0, "piecewise", knee_fraction=0.3) == pytest.approx(
        100 * 0.35 / 0.65
    )
    # still in the flat part: the least life the label allows, e (1-f)/f
    assert lb.remaining_time(1.0, 30.0, "piecewise", knee_fraction=0.3) == pytest.approx(70.0)
    assert lb.remaining_time(0.5, 1.0, "capped", max_rul=100, interval_s=10) == pytest.approx(500)
    # log scale 25 snapshots, cap 200: 25 ((1 + 8)^0.5 - 1) = 50 snapshots of 10 s
    assert lb.remaining_time(0.5, 1.0, "capped", max_rul=200, interval_s=10,
                             log_scale=25) == pytest.approx(500)
    assert lb.remaining_time(0.5, 100.0, "fpt", knee_elapsed_s=50.0) == pytest.approx(50.0)
    assert np.isnan(lb.remaining_time(1.0, 40.0, "fpt", knee_elapsed_s=50.0))
    # linear r -> 1 would be an infinite life: clipped at LINEAR_R_MAX
    assert lb.remaining_time(1.0, 10.0, "linear") == pytest.approx(10 * 0.95 / 0.05)
    with pytest.raises(ValueError, match="elapsed_s"):
        lb.remaining_time(0.5, 0.0, "linear")
    with pytest.raises(ValueError, match="max_rul"):
        lb.remaining_time(0.5, 10.0, "capped")


def test_remaining_time_edges_by_hand() -> None:
    """Every elapsed time must be positive; the piecewise knee defaults to 0.3 and lies in
    (0, 1), r above 1 counts as 1; capped needs both max_rul and interval_s; under fpt the
    knee itself has no time information (NaN) and half a second after it counts."""
    with pytest.raises(ValueError, match="elapsed_s"):
        lb.remaining_time([0.5, 0.5], [10.0, 0.0], "linear")
    # default f = 0.3: 100 * 0.5 * 0.7 / (1 - 0.35)
    assert lb.remaining_time(0.5, 100.0, "piecewise") == pytest.approx(100 * 0.35 / 0.65)
    # r = 1.2 is clipped to 1: e (1 - f) / f = 30 * 0.7 / 0.3
    assert lb.remaining_time(1.2, 30.0, "piecewise", knee_fraction=0.3) == pytest.approx(70.0)
    for f in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="knee_fraction"):
            lb.remaining_time(0.5, 10.0, "piecewise", knee_fraction=f)
    with pytest.raises(ValueError, match="interval_s"):
        lb.remaining_time(0.5, 10.0, "capped", max_rul=100)
    assert np.isnan(lb.remaining_time(0.5, 50.0, "fpt", knee_elapsed_s=50.0))
    # 0.5 s after the knee, r = 0.5: 0.5 * 0.5 / (1 - 0.5)
    assert lb.remaining_time(0.5, 50.5, "fpt", knee_elapsed_s=50.0) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("scheme", "params"),
    [("linear", {}), ("piecewise", {"knee_fraction": 0.3}), ("capped", {"max_rul": 40})],
)
def test_true_labels_give_the_true_remaining_time(scheme: str, params: dict) -> None:
    """Feeding a run's own labels back must give (N - 1 - j) x 10 s at every labelled snapshot."""
    n = 100
    y = lb.label_run(n, scheme, **params)
    t = np.arange(n) * 10.0
    for j in (20, 40, 69, 70, 90, 98):
        expected = (n - 1 - j) * 10.0
        if scheme == "piecewise" and y[j] >= 1:
            continue  # flat part: only a lower bound
        if scheme == "capped" and y[j] >= 1:
            continue
        got = ph.estimate_rul_s(y[: j + 1], t[: j + 1], scheme, params, last_k=5)
        assert got == pytest.approx(expected, rel=1e-6), (scheme, j)  # float32 labels


def test_truncation_proxy_perfect_and_late_predictions() -> None:
    n = 200
    y = lb.label_run(n, "piecewise", knee_fraction=0.3)
    snaps = pd.DataFrame({"snapshot": np.arange(n), "time_s": np.arange(n) * 10.0, "rul": y})
    table = ph.truncation_proxy(snaps, "piecewise", {"knee_fraction": 0.3})
    assert list(table["as"]) == [b.name for b in ph.TEST_BEARINGS]
    # every cut lies in the labelled degradation stage (life fractions 0.61 .. 0.98 > 0.3)
    np.testing.assert_allclose(table["accuracy"], 1.0, atol=1e-5)
    # a model that always says "healthy" over-estimates every RUL: a late prediction
    snaps["rul"] = 1.0
    late = ph.truncation_proxy(snaps, "piecewise", {"knee_fraction": 0.3})
    assert (late["er_percent"] < 0).all()
    assert late["accuracy"].mean() < 0.05


def test_test_bearing_table_matches_the_challenge_rules() -> None:
    by = ph.TEST_BY_NAME
    assert len(ph.TEST_BEARINGS) == 11
    # Test_set/Bearing1_4 holds 1139 acc files (../shared/data/real/SOURCES.md)
    assert by["Bearing1_4"].truncated_snapshots == 1139
    assert by["Bearing2_7"].truncated_snapshots == 172
    assert by["Bearing1_3"].life_fraction == pytest.approx(1802 / (1802 + 573))
    assert ph.truncation_index(100, by["Bearing1_3"].life_fraction) == 75


def test_estimate_rejects_bad_input() -> None:
    with pytest.raises(RulError, match="predictions"):
        ph.estimate_rul_s(np.zeros(3), np.zeros(2), "linear")
    with pytest.raises(RulError, match="last_k"):
        ph.estimate_rul_s(np.zeros(3), np.arange(3.0), "linear", last_k=0)


def test_rolling_estimate_uses_only_the_past() -> None:
    n = 50
    y = lb.label_run(n, "linear")
    snaps = pd.DataFrame({"snapshot": np.arange(n), "time_s": np.arange(n) * 10.0, "rul": y})
    full = ph.rolling_rul_s(snaps, "linear")
    head = ph.rolling_rul_s(snaps.iloc[:20], "linear")
    np.testing.assert_array_equal(full[:20], head)
    np.testing.assert_allclose(full[10:], (n - 1 - np.arange(10, n)) * 10.0, rtol=1e-5)


def test_rolling_estimate_equals_the_estimate_at_each_snapshot() -> None:
    rng = np.random.default_rng(0)
    n = 40
    snaps = pd.DataFrame({"snapshot": np.arange(n), "time_s": np.arange(n) * 10.0,
                          "rul": rng.uniform(0, 1, n)})
    rolled = ph.rolling_rul_s(snaps, "piecewise", {"knee_fraction": 0.3}, last_k=4)
    loop = [ph.estimate_rul_s(snaps["rul"][: j + 1], snaps["time_s"][: j + 1], "piecewise",
                              {"knee_fraction": 0.3}, last_k=4) for j in range(n)]
    np.testing.assert_allclose(rolled, loop, rtol=1e-12)


def test_subsampled_run_keeps_absolute_time_for_capped_labels() -> None:
    """Every 3rd snapshot of a 10 s run: one capped label step is 30 s, not 10 s."""
    t = np.arange(0, 3000, 30.0)  # 100 kept snapshots, 30 s apart
    n = t.size
    y = lb.label_run(n, "capped", max_rul=20)  # cap: 20 steps = 600 s
    snaps = pd.DataFrame({"snapshot": np.arange(n), "time_s": t, "rul": y})
    est = ph.rolling_rul_s(snaps, "capped", {"max_rul": 20})
    np.testing.assert_allclose(est[85:], (n - 1 - np.arange(85, n)) * 30.0, rtol=1e-5, atol=1e-4)
    table = ph.truncation_proxy(snaps, "capped", {"max_rul": 20}, cuts=[("late", 0.9)])
    assert table["actual_rul_s"].iloc[0] == pytest.approx(300.0)
    assert table["accuracy"].iloc[0] == pytest.approx(1.0, abs=1e-5)


def test_fpt_labels_without_a_knee_give_a_clear_error() -> None:
    snaps = pd.DataFrame({"snapshot": [0, 1], "time_s": [0.0, 10.0], "rul": [1.0, 0.9]})
    with pytest.raises(RulError, match="time left from 'fpt' labels: fpt: knee_elapsed_s"):
        ph.rolling_rul_s(snaps, "fpt", {})


def test_quantile_band_maps_a_quantile_to_a_band_bound() -> None:
    from rul_core.training import quantile_band

    assert quantile_band(0.5) == (None, "rul")
    level, column = quantile_band(0.2)
    assert column == "lower" and level == pytest.approx(0.6)  # 20 % below the 60 % band
    level, column = quantile_band(0.9)
    assert column == "upper" and level == pytest.approx(0.8)
    for bad in (0.0, 1.0, -0.1, float("nan")):
        with pytest.raises(RulError, match="quantile must lie strictly between 0 and 1"):
            quantile_band(bad)


def test_score_runs_reports_progress_and_can_be_cancelled() -> None:
    from types import SimpleNamespace

    from rul_core.errors import Cancelled
    from rul_core.progress import CancelToken

    events = []
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        ph.score_runs(SimpleNamespace(), [SimpleNamespace(name="x")], cancel=token)
    assert ph.score_runs(SimpleNamespace(), [], progress=events.append).empty
    assert [(e.done, e.total) for e in events] == [(0, 0)]


def test_replay_runs_uses_the_recording_timing_of_a_thinned_model() -> None:
    """Every 2nd of 100 snapshots (10 s apart), capped labels in recorded snapshots: the replay
    is exact where the last five kept snapshots lie under the cap, and only with
    ``snapshot_every=2`` (a 20 s step read as one label step doubles every estimate)."""
    from rul_core.data.run import every_nth_from_last

    n, cap = 100, 30  # cap: 30 recorded snapshots = 300 s
    kept = every_nth_from_last(n, 2)  # 1, 3, ..., 99
    y = lb.label_run(n, "capped", max_rul=cap)
    rows = pd.DataFrame({"run": "A", "snapshot": kept, "time_s": kept * 10.0, "rul": y[kept]})
    short = pd.DataFrame({"run": "B", "snapshot": [0, 1], "time_s": [0.0, 10.0],
                          "rul": [1.0, 0.9]})
    table = ph.replay_runs(pd.concat([rows, short]), "capped", {"max_rul": cap},
                           snapshot_every=2)
    assert list(table["run"]) == ["A"]  # B: fewer than 3 snapshots
    timing = ph.recording_timing(rows, 2)
    assert timing == {"interval_s": 10.0, "first_snapshot": 1}
    grid = ph.truncation_proxy(rows, "capped", {"max_rul": cap}, cuts=ph.grid_cuts(), **timing)
    under_cap = grid["actual_rul_s"] <= 300 - 4 * 20  # the last five estimates all below the cap
    assert under_cap.sum() >= 3
    np.testing.assert_allclose(grid.loc[under_cap, "accuracy"], 1.0, atol=1e-5)
    assert table["grid_proxy"].iloc[0] == pytest.approx(grid["accuracy"].mean())
    assert table["worst"].iloc[0] <= table["grid_proxy"].iloc[0]
    wrong = ph.replay_runs(rows, "capped", {"max_rul": cap}, snapshot_every=1)
    assert wrong["grid_proxy"].iloc[0] < table["grid_proxy"].iloc[0] - 0.2


def test_score_prediction_hand_value() -> None:
    """Bearing2_7 truncated at 172 snapshots (actual RUL 580 s), capped labels of 300 steps of
    10 s: a constant prediction r = 580 / 3000 implies lives e + 580; the median of the last
    five is the third from last, so the estimate is 580 - 20 = 560 s, 3.45 % early,
    A = 0.5 ** (3.448 / 20) = 0.8873."""
    j = np.arange(172)
    pred = pd.DataFrame({"snapshot": j, "time_s": j * 10.0, "rul": np.full(172, 580 / 3000)})
    row = ph.score_prediction("Bearing2_7", 172, pred, "capped", {"max_rul": 300})
    assert row["elapsed_s"] == pytest.approx(1720.0)
    assert row["estimate_rul_s"] == pytest.approx(560.0)
    assert row["er_percent"] == pytest.approx(100 * 20 / 580)
    assert row["accuracy"] == pytest.approx(0.5 ** ((100 * 20 / 580) / 20), rel=1e-9)
    assert row["accuracy"] == pytest.approx(0.8873, abs=1e-4)
    other = ph.score_prediction("Bearing2_7", 171, pred, "capped", {"max_rul": 300})
    assert other["estimate_rul_s"] == pytest.approx(560.0) and np.isnan(other["accuracy"])


def test_protocol_tables_score_test_bearings_and_replay_the_rest() -> None:
    from types import SimpleNamespace

    from rul_core.data.run import Condition, Run

    def run(name: str, n: int) -> Run:
        return Run(name=name, snapshots=np.zeros((n, 4, 1)), fs=1.0, channel_names=["x"],
                   condition=Condition(1800.0, 4000.0), timestamps=np.arange(n) * 10.0)

    runs = [run("Bearing2_7", 172), run("Bearing1_4", 40), run("Bearing1_1", 60)]
    frames = []
    for r in runs:
        j = np.arange(r.n_snapshots)
        frames.append(pd.DataFrame({"run": r.name, "snapshot": j, "time_s": j * 10.0,
                                    "rul": np.full(r.n_snapshots, 580 / 3000)}))
    trained = SimpleNamespace(label_scheme="capped", label_params={"max_rul": 300},
                              snapshot_every=1)
    out = ph.protocol_tables(trained, runs, pd.concat(frames, ignore_index=True))
    assert list(out["scored"]["run"]) == ["Bearing2_7"]
    assert out["scored"]["accuracy"].iloc[0] == pytest.approx(0.8873, abs=1e-4)
    assert list(out["replayed"]["run"]) == ["Bearing1_4", "Bearing1_1"]
    assert out["notes"] == ["Bearing1_4: 40 snapshots, not the 1139 the challenge kept: not "
                            "scored against the challenge's answer, replayed as a run recorded "
                            "to failure"]
    assert out["winner"] == ph.WINNER_SCORE
    # labels that cannot become time (fpt without the run's knee): a clear RulError, which
    # the CLI's evaluate reports as a skipped section and the Evaluate page as an error box
    fpt = SimpleNamespace(label_scheme="fpt", label_params={}, snapshot_every=1)
    with pytest.raises(RulError, match="time left from 'fpt' labels"):
        ph.protocol_tables(fpt, runs, pd.concat(frames, ignore_index=True))


def test_readme_challenge_command_is_the_challenge_settings() -> None:
    """The README's challenge command, parsed by the real CLI parser, trains what
    ``CHALLENGE_TRAINING`` (the Train page's button) says."""
    import shlex
    from pathlib import Path

    from rul_core.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [line for line in readme.splitlines()
             if line.startswith("python -m rul_core train ") and "/tmp/phm" in line]
    assert len(lines) == 1, lines
    args = build_parser().parse_args(shlex.split(lines[0].split("#")[0])[3:])
    s = ph.CHALLENGE_TRAINING
    cap_snapshots = round(s["cap_minutes"] * 60 / ph.SNAPSHOT_INTERVAL_S)
    assert (args.model, args.ablation, args.preset) == (s["model"], s["ablation"], s["preset"])
    log_snapshots = round(s["log_scale_minutes"] * 60 / ph.SNAPSHOT_INTERVAL_S)
    expected_params = [f"max_rul={cap_snapshots}"] + (
        [f"log_scale={log_snapshots}"] if log_snapshots else [])
    assert (args.labels, args.label_param) == (s["label_scheme"], expected_params)
    assert (args.every, args.phases, args.epochs, args.patience) == (
        s["snapshot_every"], s["snapshot_phases"], s["epochs"], s["patience"])
    from rul_core.models import ModelConfig

    # the band the bundle gets (RC-LSTM turns the CLI's default into its Gaussian head)
    assert ModelConfig(args.model, interval=args.interval).interval == s["interval"]
    assert args.n_members == s["n_members"]
    from rul_core.models.presets import parse_key_values

    assert parse_key_values(args.hparam, "--hparam") == s["hparams"]
    assert args.no_val is (not s["validation"])
