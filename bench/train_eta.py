"""How honest the training progress is: the fit's ETA, the stage weights of the whole job's bar,
and the whole job's bar and ETA, on real small trainings of the demo data.

    python bench/train_eta.py [--data assets/demo/data] [--out bench/results/train_eta.md]
                              [--sections fit stages jobs startup]

``fit``: each case trains a quick-preset model on the demo's first three bearings, validated
on the fourth, for a fixed number of epochs (early stopping off, so the time left is known in
hindsight). For every training batch event it records the fit's ETA (``fit_eta_s``,
:class:`rul_core.progress.FitEta`), the ETA the former estimate would have shown (time since
the member's fit began / its batches done x batches left: the first batch's tracing spread
over every batch still to come), and the time actually left until the fit's last epoch
ended, as a ratio (1 = exact).

``stages``: what each stage of those trainings took (in this process, and in a child process
as the app trains), against the weights :func:`rul_core.job_progress.training_plan` gives
them (its reference costs, measured here), and the forest head's and the validation
metrics' estimates before they ran against what they took.

``jobs``: whole jobs as the analyst runs them — the training API in this process, a training
in a child process (the Train page), ``python -m rul_core train``, a cross-validation one
fold and two folds at once (API, and the CLI's ``crossval --jobs 2``): whether the fraction
shown ever went back, and at 25, 50 and 75 % of the job's wall time the fraction and the ETA
shown then (counted down since its event, as the page does) against the time actually left.

``startup``: a training in a child process (carle and rc_lstm, an ensemble of three) and
``python -m rul_core train`` (one model, an ensemble): when the first event and the bar's first
move came, the longest stretches without an event and without the bar moving a point (and
what the line said meanwhile); when the child's bundle was written, when this process loaded
it and when the child exited; when the CLI's bar showed the saving, reached 100 %, when the
bundle was on disk and when the command ended.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = (("carle", "full", 20, 1), ("rc_lstm", "full", 10, 1), ("multimodal", "full", 10, 1),
         ("carle", "carl", 6, 3))


# ----------------------------------------------------------------------------- fit ETA
@dataclass
class Case:
    """One training and what its events said."""

    model: str
    ablation: str
    epochs: int
    members: int
    rows: list[tuple[int, int, float, float | None, str]] = field(default_factory=list)
    begins: list[float] = field(default_factory=list)  # each member's fit start

    @property
    def name(self) -> str:
        ens = f", ensemble of {self.members}" if self.members > 1 else ""
        return f"{self.model}/{self.ablation}, {self.epochs} epochs{ens}"


def _config(model: str, ablation: str, members: int = 1, **hparams: Any) -> Any:
    from rul_core.models import ModelConfig

    extra = {"interval": "ensemble", "n_members": members} if members > 1 else {}
    return ModelConfig(model, ablation=ablation, preset="quick", hparams=hparams, **extra)


def run_case(case: Case, data: Path) -> None:
    """Train ``case`` and record its training events (done, total, time, fit ETA, message)."""
    import rul_core.training as training
    from rul_core.data import load_dataset
    from rul_core.progress import FitEta

    begins = case.begins

    class Timed(FitEta):
        def member_begin(self, t: float) -> None:
            begins.append(t)
            super().member_begin(t)

    runs = list(load_dataset(data).runs)

    def progress(event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "train":
            case.rows.append((event.done, event.total, time.perf_counter(),
                              event.extra.get("fit_eta_s"), event.message))

    original, training.FitEta = training.FitEta, Timed
    try:
        training.train(_config(case.model, case.ablation, case.members), runs[:3],
                       val_runs=runs[3:], epochs=case.epochs, patience=0, progress=progress)
    finally:
        training.FitEta = original


def ratio(eta: float | None, actual: float) -> str:
    if eta is None:
        return "estimating"
    return f"{eta:.2f} s = {eta / actual:.2f}×" if actual > 0 else f"{eta:.2f} s"


def fit_table(case: Case) -> list[str]:
    """The checkpoints of one case as markdown rows."""
    batches = [r for r in case.rows if "loss" in r[4]]
    end = case.rows[-1][2]
    total = batches[0][1]
    steps = total // (case.epochs * case.members)
    wanted = {1: "1st batch", 2: "2nd batch", 3: "3rd batch", steps + 1: "epoch 2, 1st batch",
              max(4, total // 4): "25 %", total // 2: "50 %", 3 * total // 4: "75 %"}
    lines = []
    per_member = total // case.members
    for done, _, t, eta, _ in batches:
        if done not in wanted:
            continue
        member = (done - 1) // per_member  # the former estimate timed each member alone
        here = done - member * per_member
        old = (t - case.begins[member]) / here * (total - done)
        actual = end - t
        lines.append(f"| {case.name} | {done}/{total} ({wanted.pop(done)}) | {actual:.2f} s | "
                     f"{ratio(eta, actual)} | {ratio(old, actual)} |")
    return lines


def fit_section(data: Path) -> list[str]:
    lines = ["## The fit's ETA", "",
             "| training | batches done | actual time left in the fit | fit ETA shown | "
             "former estimate |", "|---|---|---|---|---|"]
    for model, ablation, epochs, members in CASES:
        case = Case(model, ablation, epochs, members)
        run_case(case, data)
        rows = fit_table(case)
        print("\n".join(rows), flush=True)
        lines += rows
    return [*lines, "", "Ratios: the fit's ETA over the time actually left until the fit's last "
            "epoch ended (the stages after it are in the whole job's ETA below)."]


# ----------------------------------------------------------------------------- events
@dataclass
class Timeline:
    """A job's events as (seconds since its start, event), and when it ended."""

    name: str
    events: list[tuple[float, Any]] = field(default_factory=list)
    end: float = 0.0
    t0: float = field(default_factory=time.perf_counter)

    def __call__(self, event: Any) -> None:
        self.events.append((time.perf_counter() - self.t0, event))

    def done(self) -> None:
        self.end = time.perf_counter() - self.t0

    def first(self, stage: str, done: int | None = None) -> float:
        return next(t for t, e in self.events
                    if e.stage == stage and (done is None or e.done == done))

    def last(self, stage: str) -> float:
        return [t for t, e in self.events if e.stage == stage][-1]


# ----------------------------------------------------------------------------- stages
STAGE_CASES = (("carle", "full", 10, {}), ("carle", "carl", 10, {}),
               ("multimodal", "full", 5, {"forest": True}), ("rc_lstm", "full", 10, {}))
#: Cases on the larger data (:data:`LARGER`): (label, config, epochs).
LARGER_STAGE_CASES = (("carle/full", "quick", 20), ("carle/full", "paper", 3))


def stage_section(data: Path) -> list[str]:
    """Each stage's measured share of a training against the plan's weight."""
    import rul_core.training as training
    from rul_core.data import load_dataset
    from rul_core.isolated import train_isolated
    from rul_core.job_progress import TrainingEta, training_plan

    demo = list(load_dataset(data).runs)
    tmp = tempfile.TemporaryDirectory(prefix="train-eta-")
    larger = list(load_dataset(larger_data(Path(tmp.name) / "larger")).runs)
    in_child = (("carle", "full"), ("rc_lstm", "full"))  # also trained as the app does
    cases = [(f"{m}/{a}, {e} epochs", demo, _config(m, a, **hp), e, (m, a) in in_child)
             for m, a, e, hp in STAGE_CASES]
    cases += [(f"larger data: {label} {preset}, {e} epochs", larger,
               _paper("carle", "full") if preset == "paper" else _config("carle", "full"), e,
               False) for label, preset, e in LARGER_STAGE_CASES]
    rows = ["| training | where | stage | weight (reference s) | planned share | measured s | "
            "measured share |", "|---|---|---|---|---|---|---|"]
    costs = ["| training | prepare ms/window | build s | first batch one-off s | ms per training "
             "window | validation ms/window (share of a training window) | forest: trees s "
             "(calibrated estimate) | embedding pass s (estimate) | validation metrics s "
             "(estimate) |", "|---|---|---|---|---|---|---|---|---|"]
    for name, runs, config, epochs, child in cases:
        kw = {"val_runs": runs[3:], "epochs": epochs, "patience": 0}
        seen: dict[str, Any] = {}
        estimates: dict[str, float | None] = {}

        class Kept(TrainingEta):
            def __init__(self, *args: Any, _seen: dict = seen, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                _seen["eta"] = self

        def progress(event: Any, line: Timeline, seen: dict = seen,
                     estimates: dict = estimates) -> None:
            line(event)
            eta = seen.get("eta")
            if eta is None:
                return
            t = time.perf_counter()
            if event.stage == "forest" and event.done == 0:
                estimates["embed"] = eta._prediction(eta.plan.n_train)
            if event.stage == "forest" and event.done == 1 and "trees" not in estimates:
                left = eta._forest_left()
                estimates["trees"] = left
            if event.stage == "validate" and event.done == 0:
                estimates["validate"] = eta.estimate("validate", t).eta_s

        original, training.TrainingEta = training.TrainingEta, Kept
        try:
            line = Timeline(name)
            training.train(config, runs[:3], progress=lambda e, ln=line: progress(e, ln), **kw)
            line.done()
        finally:
            training.TrainingEta = original
        eta = seen["eta"]
        plan = training_plan(config, runs[:3], runs[3:], epochs=epochs)
        trees_per = (f" ({(line.last('forest') - line.first('forest', 1)) / plan.trees * 1000:.1f}"
                     f" ms a tree of {plan.n_train} x {plan.features:g})" if plan.trees else "")
        fit = eta.fit
        batch = fit.batch_cost()
        measured = _fit_stages(line, 0.0)
        if plan.trees:
            measured["forest"] = line.last("forest") - line.last("train")
        measured["validate"] = line.end - line.last("forest" if plan.trees else "train")
        rows += _share_rows(name, "this process", plan.stages, measured)
        pred = fit.prediction_costs()
        val_ms = pred[1] / eta.val_batch_size * 1000 if pred else float("nan")
        train_ms = batch / eta.batch_size * 1000
        trees = (f"{line.last('forest') - line.first('forest', 1):.2f} "
                 f"({estimates['trees']:.2f}){trees_per}" if plan.trees else "—")
        embed = (f"{line.first('forest', 1) - line.first('forest', 0):.2f} "
                 f"({estimates['embed']:.2f})" if plan.trees else "—")
        costs.append(
            f"| {name} | {measured['prepare'] / plan.windows * 1000:.2f} | "
            f"{measured['build']:.2f} | {measured['compile'] - batch:.2f} | {train_ms:.2f} | "
            f"{val_ms:.2f} "
            f"({val_ms / train_ms:.2f}) | {trees} | {embed} | "
            f"{line.end - line.first('validate', 0):.2f} ({estimates['validate']:.2f}) |")
        print(rows[-1], costs[-1], sep="\n", flush=True)
        if child:
            iso = Timeline(f"{name} isolated")
            train_isolated(config, runs[:3], progress=iso, **kw)
            iso.done()
            iplan = training_plan(config, runs[:3], runs[3:], epochs=epochs, isolated=True)
            child = [t for t, e in iso.events if e.stage not in ("start", "finish")]
            finish0 = iso.first("finish", 0)
            im = {"start": child[0], **_fit_stages(iso, child[0])}
            if iplan.trees:
                im["forest"] = iso.last("forest") - iso.last("train")
            im["validate"] = finish0 - iso.last("forest" if iplan.trees else "train")
            im["finish"] = iso.end - finish0
            rows += _share_rows(name, "child process", iplan.stages, im)
    tmp.cleanup()
    return ["## Stage weights", "", *rows, "", "Per-unit costs measured in those trainings "
            "(this process; estimates made before the stage ran):", "", *costs]


def _fit_stages(line: Timeline, since: float) -> dict[str, float]:
    """Seconds of a single model's preparation (from ``since``), build, first batch (compile)
    and the rest of its fit, from a training's events."""
    compiling = line.first("compile")
    first_batch = next(t for t, e in line.events if e.stage == "train" and "batch" in e.extra)
    return {"prepare": line.last("prepare") - since,
            "build": compiling - line.last("prepare"),
            "compile": first_batch - compiling,
            "train": line.last("train") - first_batch}


def _share_rows(name: str, where: str, stages: Any, measured: dict[str, float]) -> list[str]:
    total_w, total_m = stages.total, sum(measured.values())
    out = []
    for s in stages.stages:
        m = measured.get(s.name, 0.0)
        out.append(f"| {name} | {where} | {s.name} | {s.weight:.2f} | "
                   f"{100 * s.weight / total_w:.0f} % | {m:.2f} | {100 * m / total_m:.0f} % |")
    return out


# ----------------------------------------------------------------------------- jobs
def checkpoints(name: str, points: list[tuple[float, float | None, float | None, str]],
                end: float) -> list[str]:
    """Rows at 25/50/75 % of ``end``: from ``points`` (time, overall, eta_s, ETA text) the
    last at or before each; plus whether the fraction ever went back."""
    fractions = [p[1] for p in points if p[1] is not None]
    back = max((a - b for a, b in itertools.pairwise(fractions)), default=0.0)
    rows = []
    for share in (0.25, 0.5, 0.75):
        at = share * end
        before = [p for p in points if p[0] <= at]
        t, overall, eta, text = before[-1][:4] if before else (0.0, None, None, "")
        actual = end - at
        shown = None if eta is None else max(0.0, eta - (at - t))
        ratio_text = "—" if shown is None else f"{shown:.1f} s = {shown / actual:.2f}×"
        rows.append(f"| {name} | {100 * share:.0f} % ({at:.1f} s) | "
                    f"{'—' if overall is None else f'{100 * overall:.0f} %'} | {text} | "
                    f"{actual:.1f} s | {ratio_text} | "
                    f"{'never' if back <= 1e-12 else f'by {back:.3f}'} |")
    return rows


def _points(line: Timeline) -> list[tuple[float, float | None, float | None, str]]:
    from rul_core.progress import eta_of

    return [(t, e.extra.get("overall"), e.extra.get("eta_s")
             if not e.extra.get("eta_then") else None, eta_of(e.extra) or "")
            for t, e in line.events if "overall" in e.extra]


_ETA = re.compile(r"ETA (≤ )?(?:(\d+) h (\d+) min|(\d+) min (\d+) s|(\d+) s|(< 1 s)|"
                  r"(estimating…))(, then [^\]]*)?")
_BAR = re.compile(r"^(?P<desc>[^:|]+): *(?P<pct>\d+)%\|")


def _eta_seconds(text: str) -> float | None:
    m = _ETA.search(text)
    if m is None or m.group(8) or m.group(9):
        return None
    if m.group(2):
        return int(m.group(2)) * 3600 + int(m.group(3)) * 60
    if m.group(4):
        return int(m.group(4)) * 60 + int(m.group(5))
    return 0.5 if m.group(7) else float(m.group(6))


def cli_points(argv: list[str], env: dict[str, str], all_bars: bool = False
               ) -> tuple[list[Any], float]:
    """Run ``python -m rul_core ARGV``; its bar's refreshes as (time, fraction, ETA s, ETA
    text, stage), and its wall time (``all_bars``: also the refreshes that show no ETA)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rul_core", *argv], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    points: list[Any] = []
    buffer = b""

    def read() -> None:
        nonlocal buffer
        while chunk := proc.stderr.read1(65536):  # type: ignore[union-attr]
            t = time.perf_counter() - t0
            buffer += chunk
            *parts, buffer = re.split(rb"[\r\n]", buffer)
            if buffer.replace(b"\x1b[A", b"").rstrip().endswith(b"]"):  # a whole refresh
                parts, buffer = [*parts, buffer], b""
            for part in parts:
                text = part.decode("utf-8", "replace").replace("\x1b[A", "").strip()
                m = _BAR.match(text)
                if (m and ("ETA" in text or all_bars)
                        and not m.group("desc").startswith("load")):
                    eta = _ETA.search(text)
                    points.append((t, int(m.group("pct")) / 100, _eta_seconds(text),
                                   eta.group(0) if eta else "", m.group("desc").strip()))

    reader = threading.Thread(target=read)
    reader.start()
    proc.wait()
    reader.join()
    if proc.returncode:
        raise RuntimeError(f"python -m rul_core {' '.join(argv)} exited {proc.returncode}")
    return points, time.perf_counter() - t0


def job_section(data: Path) -> list[str]:
    from rul_core.crossval import cross_validate
    from rul_core.data import load_dataset
    from rul_core.isolated import train_isolated
    from rul_core.training import train

    runs = list(load_dataset(data).runs)
    rows = ["| job | at | fraction shown | ETA shown | actual time left | ETA / actual | "
            "fraction went back |", "|---|---|---|---|---|---|---|"]

    def record(name: str, line: Timeline) -> None:
        new = checkpoints(name, _points(line), line.end)
        print("\n".join(new), flush=True)
        rows.extend(new)

    def timed(name: str, job: Any, *args: Any, **kwargs: Any) -> None:
        """Run ``job(*args, progress=..., **kwargs)`` on a timeline and record it as ``name``
        (``{end}``: its seconds)."""
        line = Timeline("")
        job(*args, progress=line, **kwargs)
        line.done()
        record(name.format(end=line.end), line)

    kw = {"val_runs": runs[3:], "patience": 0}
    for model, ablation, epochs, hp in STAGE_CASES:
        timed(f"API: train {model}/{ablation}, {epochs} epochs ({{end:.1f}} s)", train,
              _config(model, ablation, **hp), runs[:3], epochs=epochs, **kw)
    timed("child process: carle/full, 10 epochs ({end:.1f} s)", train_isolated,
          _config("carle", "full"), runs[:3], epochs=10, **kw)
    for jobs in (1, 2):
        timed(f"API: cross-validate carle/carl, 4 folds, {jobs} at once ({{end:.1f}} s)",
              cross_validate, _config("carle", "carl"), runs, jobs=jobs, epochs=6, patience=0)
    with tempfile.TemporaryDirectory(prefix="train-eta-") as tmp:
        env = {**os.environ, "RUL_WORKSPACE": str(Path(tmp) / "ws"), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(ROOT)}
        larger = larger_data(Path(tmp) / "larger")
        common = ["--preset", "quick", "--patience", "0"]
        for name, argv in (
            ("CLI: train --model carle (full), --epochs 10",
             ["train", "--model", "carle", "--epochs", "10", "--out", str(Path(tmp) / "b"),
              "--data", str(data), *common]),
            ("CLI: crossval --model carle --ablation carl --epochs 6 --jobs 2",
             ["crossval", "--model", "carle", "--ablation", "carl", "--epochs", "6",
              "--jobs", "2", "--out", str(Path(tmp) / "cv"), "--data", str(data), *common]),
            ("larger data, CLI: train --model carle (full), 20 epochs",
             ["train", "--model", "carle", "--out", str(Path(tmp) / "b2"), "--data",
              str(larger), *common]),
        ):
            points, end = cli_points(argv, env, all_bars=True)
            after = end - points[-1][0] if points else float("nan")
            new = checkpoints(f"{name} ({end:.1f} s; {after:.1f} s after its bar's last "
                              "refresh)", points, end)
            print("\n".join(new), flush=True)
            rows.extend(new)
        big = list(load_dataset(larger).runs)
        big_kw = {"val_runs": big[3:], "patience": 0}
        for what, config, epochs in (
                ("carle/full, 20 epochs", _config("carle", "full"), 20),
                ("rc_lstm/full, 10 epochs", _config("rc_lstm", "full"), 10),
                ("carle/full paper preset (800 trees), 3 epochs",
                 _paper("carle", "full"), 3)):
            timed(f"larger data, API: train {what} ({{end:.1f}} s)", train, config, big[:3],
                  epochs=epochs, **big_kw)
        timed("larger data, child process: carle/full, 20 epochs ({end:.1f} s)",
              train_isolated, _config("carle", "full"), big[:3], epochs=20, **big_kw)
        timed("larger data, API: cross-validate carle/carl, 4 folds, 2 at once, 10 epochs "
              "({end:.1f} s)", cross_validate, _config("carle", "carl"), big, jobs=2,
              epochs=10, patience=0)
    return ["## The whole job's bar and ETA", "",
            f"Larger data: {LARGER} (3 training bearings of 400 windows, 1 validation; the "
            "demo's have 48).", "", *rows]


# ----------------------------------------------------------------------------- start-up
def _silences(line: Timeline, until: float) -> tuple[float, str, float, str]:
    """(longest stretch without an event, the stage shown meanwhile, longest stretch without
    the fraction shown moving by a point, the stage shown meanwhile) of ``line`` up to
    ``until``."""
    gap, gap_stage, still, still_stage = 0.0, "", 0.0, ""
    t_prev, stage_prev = 0.0, "(nothing yet)"
    t_move, shown, stage_move = 0.0, -1.0, "(nothing yet)"
    for t, e in [*line.events, (until, None)]:
        if t - t_prev > gap:
            gap, gap_stage = t - t_prev, stage_prev
        overall = e.extra.get("overall") if e is not None else None
        if e is None or (overall is not None and overall >= shown + 0.01):
            if t - t_move > still:
                still, still_stage = t - t_move, stage_move
            if e is not None:
                t_move, shown = t, float(overall)
        if e is not None:
            t_prev, stage_prev = t, f"{e.stage}: {e.message}"[:60]
            if e is not None and overall is not None and t_move == t:
                stage_move = stage_prev
    return gap, gap_stage, still, still_stage


def _exited(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie not reaped yet counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True


def startup_section(data: Path) -> list[str]:
    """A training in a child process (the Train page's) and ``python -m rul_core train``: when
    the first event and the first move of the bar come, the longest silences (no event; the
    bar not moving by a point) and what the line said meanwhile; when the parent had the
    model against when the child exited; when the CLI's bar reached 100 % against when the
    bundle was catalogued and the command ended."""
    import multiprocessing

    import rul_core.bundle as bundle_mod
    import rul_core.isolated as isolated_mod
    from rul_core.data import load_dataset
    from rul_core.isolated import train_isolated

    runs = list(load_dataset(data).runs)
    rows = ["| job | first event s | bar first moves s | longest without an event s (line "
            "meanwhile) | longest without the bar moving a point s (line meanwhile) | end s |",
            "|---|---|---|---|---|---|"]
    overlap = ["| job | bundle written s | model loaded from s | loaded by s | child exited s | "
               "returned s |", "|---|---|---|---|---|---|"]
    for model, ablation, epochs in (("carle", "full", 10), ("rc_lstm", "full", 10),
                                    ("carle", "carl", 4)):
        members = 3 if ablation == "carl" else 1
        line = Timeline("")
        marks: dict[str, float] = {}
        stop = threading.Event()

        folders: dict[str, str] = {}  # the child's temporary folder (this job's, not others')

        class Recorded(tempfile.TemporaryDirectory):  # type: ignore[type-arg]
            def __init__(self, *args: Any, _folders: dict[str, str] = folders,
                         **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                _folders["tmp"] = self.name

        def watch(marks: dict[str, float] = marks, line: Timeline = line,
                  stop: threading.Event = stop, folders: dict[str, str] = folders) -> None:
            pid = None
            while not stop.is_set():
                now = time.perf_counter() - line.t0
                if pid is None:  # (active_children() reaps: called only until the child is up)
                    pid = next((p.pid for p in multiprocessing.active_children()
                                if p.name == "rul-train"), None)
                elif "exited" not in marks and _exited(pid):
                    marks["exited"] = now
                if ("written" not in marks and "tmp" in folders
                        and (Path(folders["tmp"]) / "bundle" / "card.json").exists()):
                    marks["written"] = now
                time.sleep(0.005)

        original = bundle_mod.load_bundle

        def timed_load(*args: Any, _marks: dict[str, float] = marks, _line: Timeline = line,
                       _original: Any = original, **kwargs: Any) -> Any:
            _marks["load_from"] = time.perf_counter() - _line.t0
            out = _original(*args, **kwargs)
            _marks["load_by"] = time.perf_counter() - _line.t0
            return out

        watcher = threading.Thread(target=watch, daemon=True)
        bundle_mod.load_bundle = timed_load
        isolated_mod.tempfile = types.SimpleNamespace(TemporaryDirectory=Recorded)
        watcher.start()
        try:
            train_isolated(_config(model, ablation, members), runs[:3], val_runs=runs[3:],
                           epochs=epochs, patience=0, progress=line)
            line.done()
        finally:
            bundle_mod.load_bundle = original
            isolated_mod.tempfile = tempfile
            time.sleep(0.05)
            stop.set()
            watcher.join()
        name = (f"child process: {model}/{ablation}, {epochs} epochs"
                + (f", ensemble of {members}" if members > 1 else ""))
        moved = next((t for t, e in line.events if (e.extra.get("overall") or 0.0) > 0.0),
                     float("nan"))
        gap, gap_at, still, still_at = _silences(line, line.end)
        rows.append(f"| {name} | {line.events[0][0]:.2f} | {moved:.2f} | {gap:.2f} ({gap_at}) | "
                    f"{still:.2f} ({still_at}) | {line.end:.2f} |")
        exited = marks.get("exited", float("nan"))
        overlap.append(f"| {name} | {marks.get('written', float('nan')):.2f} | "
                       f"{marks.get('load_from', float('nan')):.2f} | "
                       f"{marks.get('load_by', float('nan')):.2f} | {exited:.2f} | "
                       f"{line.end:.2f} |")
        print(rows[-1], overlap[-1], sep="\n", flush=True)
    cli = ["| command | first bar s | bar first moves s | longest between refreshes s | "
           "saving shown from s | bar at 100 % s | bundle written s | ended s |",
           "|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="train-eta-") as tmp:
        env = {**os.environ, "RUL_WORKSPACE": str(Path(tmp) / "ws"), "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": str(ROOT)}
        for i, extra in enumerate((["--epochs", "10"],
                                   ["--ablation", "carl", "--epochs", "4", "--interval",
                                    "ensemble", "--n-members", "3"])):
            out = Path(tmp) / f"b{i}"
            seen: dict[str, float] = {}
            done = threading.Event()
            t0 = time.perf_counter()

            def poll(out: Path = out, seen: dict[str, float] = seen, t0: float = t0,
                     done: threading.Event = done) -> None:
                while not done.is_set():
                    if "bundle" not in seen and (out / "card.json").exists():
                        seen["bundle"] = time.perf_counter() - t0
                    time.sleep(0.005)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            points, end = cli_points(["train", "--model", "carle", "--out", str(out),
                                      "--data", str(data), "--preset", "quick",
                                      "--patience", "0", *extra], env, all_bars=True)
            done.set()
            poller.join()
            bars = [p for p in points if p[1] is not None]
            first = bars[0][0] if bars else float("nan")
            moves = [p[0] for p in bars if p[1] > 0]
            full = next((p[0] for p in bars if p[1] >= 1.0), float("nan"))
            times = [p[0] for p in bars]
            between = max((b - a for a, b in itertools.pairwise(times)), default=float("nan"))
            saving = next((p[0] for p in bars if p[4] == "save"), float("nan"))
            cli.append(f"| train --model carle {' '.join(extra)} | {first:.2f} | "
                       f"{(moves[0] if moves else float('nan')):.2f} | {between:.2f} | "
                       f"{saving:.2f} | {full:.2f} | {seen.get('bundle', float('nan')):.2f} | "
                       f"{end:.2f} |")
            print(cli[-1], flush=True)
    return ["## Start-up and hand-over", "", "Demo data, quick preset, early stopping off; "
            "seconds from the job's start (the child-process rows: the call of "
            "`train_isolated`; the CLI rows: the command's start).", "", *rows, "",
            "The hand-over: the parent loading the bundle against the child's exit.", "",
            *overlap, "", "`python -m rul_core train` (the bundle is written when its folder "
            "appears: it is renamed into place whole; it is catalogued right after).", "", *cli]


#: The larger synthetic dataset of the ``jobs`` section.
LARGER = "synthetic FEMTO layout, 4 bearings x 100 snapshots of 2560 samples, seed 0"


def larger_data(folder: Path) -> Path:
    """Write the larger synthetic dataset (:data:`LARGER`) into ``folder``."""
    from rul_core.data.synthetic import write_dataset

    return write_dataset(folder, "femto", n_bearings=4, n_snapshots=100, samples=2560, seed=0)


def _paper(model: str, ablation: str) -> Any:
    from rul_core.models import ModelConfig

    return ModelConfig(model, ablation=ablation, preset="paper")


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from app_speed import machine

    from rul_core.device import import_backend_quietly

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "assets" / "demo" / "data"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_eta.md"))
    ap.add_argument("--sections", nargs="+", default=["fit", "stages", "jobs", "startup"],
                    choices=["fit", "stages", "jobs", "startup"])
    args = ap.parse_args(argv)
    import_backend_quietly()
    data = Path(args.data)
    text: list[str] = ["# Training progress and ETA (`bench/train_eta.py`)", "",
                       f"Machine: {machine()}; other jobs were sharing its cores. Quick preset, "
                       "demo data (3 training bearings, 1 validation), early stopping off.", ""]
    sections = {"fit": fit_section, "stages": stage_section, "jobs": job_section,
                "startup": startup_section}
    for name in args.sections:
        text += [*sections[name](data), ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(text))
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
