"""Training in a child process: same model as in-process, progress and cancel cross over, failures
keep their message, and the child never runs the parent's main script."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
from tiny_models import TINY_CARLE

from rul_core import isolated
from rul_core.data.synthetic import synth_run
from rul_core.errors import Cancelled, RulError
from rul_core.models import ModelConfig
from rul_core.progress import CancelToken, ProgressEvent
from rul_core.training import predict_run, train


@pytest.fixture(scope="module")
def runs() -> list:
    return [synth_run(f"Bearing1_{i}", n_snapshots=6, seed=i) for i in (1, 2)]


def _config() -> ModelConfig:
    return ModelConfig("carle", ablation="carl", hparams=dict(TINY_CARLE), seed=3)


def test_child_trains_the_same_model_as_this_process(runs: list) -> None:
    events: list[ProgressEvent] = []
    child = isolated.train_isolated(_config(), runs[:1], val_runs=runs[1:], epochs=2,
                                    batch_size=32, progress=events.append)
    here = train(_config(), runs[:1], val_runs=runs[1:], epochs=2, batch_size=32)
    assert [r.name for r in child.train_runs] == ["Bearing1_1"]
    assert child.interval_calibration == pytest.approx(here.interval_calibration, rel=1e-5)
    assert child.history[0]["loss"] == pytest.approx(here.history[0]["loss"], rel=1e-5)
    a, b = predict_run(child, runs[1]), predict_run(here, runs[1])
    np.testing.assert_allclose(a["rul"], b["rul"], rtol=1e-5, atol=1e-6)
    ends = [e for e in events if e.extra.get("epoch_end")]
    assert [e.extra["epoch"] for e in ends] == [1, 2]  # both epochs reported to this process
    # one fraction for the whole job: the child's training between its start and hand-over,
    # each weighed as training_plan(isolated=True) says; forward only
    from rul_core.job_progress import OverallTracker, training_plan

    plan = training_plan(_config(), runs[:1], runs[1:], epochs=2, batch_size=32,
                         isolated=True).stages
    overall = [e.extra["overall"] for e in events]
    assert overall == sorted(overall) and overall[0] == 0.0 and overall[-1] == 1.0
    share = plan.stage("start").weight / plan.total
    child_first = next(e for e in events if e.stage == "prepare")
    assert child_first.extra["overall"] == pytest.approx(share)  # the child has started
    assert events[0].stage == "start" and events[0].extra["eta_s"] is None  # estimating
    last_child = [e for e in events if e.stage == "validate"][-1]
    tracker = OverallTracker(plan)
    assert last_child.extra["overall"] == pytest.approx(tracker.nested(1.0))
    # the child's ETA counts the hand-over; the hand-over's events carry none
    assert last_child.extra["eta_s"] == pytest.approx(isolated_finish_s())
    assert all("eta_s" not in e.extra for e in events if e.stage == isolated.FINISH)


def isolated_finish_s() -> float:
    from rul_core.job_progress import FINISH_S

    return FINISH_S


def test_cancel_stops_the_child(runs: list) -> None:
    token = CancelToken()
    token.cancel()
    before = set(multiprocessing.active_children())
    with pytest.raises(Cancelled):
        isolated.train_isolated(_config(), runs[:1], epochs=500, batch_size=32, cancel=token)
    assert set(multiprocessing.active_children()) == before


def test_a_cancel_after_the_last_cancel_point_keeps_the_model(runs: list) -> None:
    """A cancel that arrives once training has finished (the child saving the model) cannot
    stop it: the model comes back, the events say it was handed over, and the grace period
    (0 here) does not kill a child that is only saving."""
    token = CancelToken()
    events: list[ProgressEvent] = []

    def progress(event: ProgressEvent) -> None:
        events.append(event)
        if event.stage == isolated.FINISH:
            token.cancel()

    model = isolated.train_isolated(_config(), runs[:1], epochs=1, batch_size=32,
                                    progress=progress, cancel=token, grace_s=0.0)
    assert model.history[0]["loss"]
    assert [(e.done, e.total) for e in events if e.stage == isolated.FINISH] == [
        (0, 2), (1, 2), (2, 2)]
    assert events[-1].message == "training finished; model ready"


def test_a_child_that_does_not_stop_is_terminated(runs: list) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled, match="process was stopped"):  # grace 0: no time to stop
        isolated.train_isolated(_config(), runs[:1], epochs=500, cancel=token, grace_s=0.0)


@pytest.fixture()
def main_script_that_leaves_a_mark(tmp_path: Path):
    """A stand-in for Streamlit's page-as-``__main__``: running it creates ``ran.txt``."""
    mark = tmp_path / "ran.txt"
    script = tmp_path / "page.py"
    script.write_text(f"open({str(mark)!r}, 'w').write('ran')\n")
    fake = types.ModuleType("__main__")
    fake.__file__ = str(script)
    original = sys.modules["__main__"]
    sys.modules["__main__"] = fake
    try:
        yield mark, fake
    finally:
        sys.modules["__main__"] = original


def test_plain_spawn_would_rerun_the_main_script(main_script_that_leaves_a_mark) -> None:
    mark, _ = main_script_that_leaves_a_mark
    child = multiprocessing.get_context("spawn").Process(target=os.getpid)
    child.start()
    child.join(60)
    assert mark.exists()  # the hazard train_isolated guards against is real


def test_failure_keeps_its_message_and_skips_the_main_script(
    runs: list, main_script_that_leaves_a_mark
) -> None:
    mark, fake = main_script_that_leaves_a_mark
    with pytest.raises(RulError, match="Bearing1_1"):  # a bearing on both sides is refused
        isolated.train_isolated(_config(), runs[:1], val_runs=runs[:1], epochs=1)
    assert not mark.exists()
    assert sys.modules["__main__"] is fake  # put back after the start


def test_exit_descriptions_name_the_code_or_the_signal() -> None:
    assert isolated.describe_exit(1) == "exited with code 1"
    assert "SIGKILL" in isolated.describe_exit(-9) and "memory" in isolated.describe_exit(-9)
    assert isolated.describe_exit(-15) == "was killed (SIGTERM)"


def test_a_killed_child_is_reported_as_killed(runs: list) -> None:
    """The kernel's out-of-memory killer, played by a SIGKILL at the first epoch's end: the
    parent raises a RulError that says so instead of waiting for a result forever."""
    import signal

    def kill_the_child(event: ProgressEvent) -> None:
        if event.extra.get("epoch_end"):
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(RulError, match=r"was killed \(SIGKILL; usually the kernel's out-of-mem"):
        isolated.train_isolated(_config(), runs[:1], epochs=50, batch_size=32,
                                progress=kill_the_child)


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie, not reaped yet, counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def _reaped(pid: int, within_s: float) -> bool:
    """Whether process ``pid`` is gone from the process table (reaped, no zombie) within
    ``within_s`` seconds; reads /proc only, which reaps nothing itself."""
    deadline = time.monotonic() + within_s
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _child_with_a_slow_exit(*args: object) -> None:
    """The training child, then 4 s more before it exits (a slow teardown, as TensorFlow's can
    be): runs in the child, where ``isolated._child`` is the real one."""
    isolated._child(*args)
    time.sleep(4.0)


def _child_exiting_with_code_3(*args: object) -> None:
    """The training child, which then exits with code 3 (a crash in its teardown)."""
    isolated._child(*args)
    sys.exit(3)


def _child_pids() -> list[int]:
    return [p.pid for p in multiprocessing.active_children() if p.name == "rul-train"]


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def test_the_start_reports_while_the_child_imports_tensorflow(
        runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawning the child and importing TensorFlow there take seconds in which the child
    reports nothing of its training. This process sends the start's event again meanwhile,
    with the seconds since the spawn, moving the bar through the start by the time (forward
    only, never past its share, 'estimating…'); the child says when it is up and imports."""
    from rul_core import progress as progress_mod
    from rul_core.job_progress import training_plan

    monkeypatch.setattr(progress_mod, "HEARTBEAT_S", 0.1, raising=False)
    events: list[tuple[float, ProgressEvent]] = []
    t0 = time.monotonic()
    isolated.train_isolated(_config(), runs[:1], epochs=1, batch_size=32,
                            progress=lambda e: events.append((time.monotonic() - t0, e)))
    first_training = next(i for i, (_, e) in enumerate(events) if e.stage == "prepare")
    start = [e for _, e in events[:first_training]]
    assert {e.stage for e in start} == {"start"} and len(start) >= 4  # not one, then silence
    importing = next(i for i, e in enumerate(start) if "importing TensorFlow" in e.message)
    # the parent's heartbeat went on while the child imported TensorFlow and set up training
    after = start[importing + 1:]
    assert len(after) >= 3
    assert all(e.message.startswith("starting the training process") for e in start)
    elapsed = [e.extra["elapsed_s"] for e in start]
    assert elapsed == sorted(elapsed) and elapsed[-1] >= 1.0
    assert any(e.message.endswith(" s") for e in after)  # the seconds, in the line
    from rul_core.job_progress import TIMED_CAP

    overall = [e.extra["overall"] for e in start]
    plan = training_plan(_config(), runs[:1], epochs=1, batch_size=32, isolated=True).stages
    share = plan.stage("start").weight / plan.total
    assert overall == sorted(overall) and overall[0] == 0.0
    assert overall[-1] > overall[importing] and overall[-1] <= TIMED_CAP * share + 1e-9
    assert all(e.extra["eta_s"] is None for e in start)  # estimating: no basis yet
    assert events[first_training][1].extra["overall"] == pytest.approx(share)


@needs_proc
def test_the_model_is_ready_before_the_child_has_exited(
        runs: list, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the child says its bundle is written, this process loads it while the child
    tears down (stubbed: 4 s): the Train page's job has its result while the child still
    runs, and the child is reaped afterwards (no zombie left)."""
    from rul_core import ui_state

    monkeypatch.setattr(isolated, "_child", _child_with_a_slow_exit)
    pids: list[int] = []

    def target(progress, cancel):  # type: ignore[no-untyped-def]
        def relay(event: ProgressEvent) -> None:
            if event.stage == isolated.FINISH and not pids:
                pids.extend(_child_pids())
            progress(event)

        return isolated.train_isolated(_config(), runs[:1], epochs=1, batch_size=32,
                                       progress=relay, cancel=cancel)

    job = ui_state.start_job("slow-exit", target)
    deadline = time.monotonic() + 120
    while job.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert job.status == "done" and job.result.history[0]["loss"]
    assert len(pids) == 1 and not _exited(pids[0])  # the child is still tearing down
    assert _reaped(pids[0], within_s=30)  # then gone from the process table


@needs_proc
def test_a_child_that_fails_after_handing_over_is_logged_and_the_model_kept(
        runs: list, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A child that exits with an error after its bundle was written (and checked on
    loading) leaves the model usable; its exit code is logged once it has been reaped."""
    import logging

    monkeypatch.setattr(isolated, "_child", _child_exiting_with_code_3)
    caplog.set_level(logging.WARNING, logger="rul_core.isolated")
    model = isolated.train_isolated(_config(), runs[:1], epochs=1, batch_size=32)
    assert model.history[0]["loss"]
    deadline = time.monotonic() + 30
    while not caplog.records and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.getMessage() for r in caplog.records] == [
        "the training process exited with code 3 after handing its model over; the model is "
        "kept"]
