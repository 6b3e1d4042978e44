"""How honest the training ETA is: the ETA each training event reported against the time the
fit actually took from there, on real small trainings of the demo data.

    python bench/train_eta.py [--data assets/demo/data] [--out bench/results/train_eta.md]

Each case trains a quick-preset model on the demo's first three bearings, validated on the
fourth, for a fixed number of epochs (early stopping off, so the time left is known in
hindsight). For every training batch event it records the ETA shown (``eta_s``,
:class:`rul_core.progress.FitEta`), the ETA the former estimate would have shown (time since
the member's fit began / its batches done x batches left: the first batch's tracing spread
over every batch still to come), and the time actually left until the fit's last epoch
ended. The table gives both as a ratio to the actual time left (1 = exact; "estimating"
while there is no estimate) at the first batches, the second epoch's first batch, and a
quarter, half and three quarters of the way.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = (("carle", "full", 20, 1), ("rc_lstm", "full", 10, 1), ("multimodal", "full", 10, 1),
         ("carle", "carl", 6, 3))


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


def run_case(case: Case, data: Path) -> None:
    """Train ``case`` and record its training events (done, total, time, eta, message)."""
    import rul_core.training as training
    from rul_core.data import load_dataset
    from rul_core.models import ModelConfig
    from rul_core.progress import FitEta

    begins = case.begins

    class Timed(FitEta):
        def member_begin(self, t: float) -> None:
            begins.append(t)
            super().member_begin(t)

    runs = list(load_dataset(data).runs)
    extra = {"interval": "ensemble", "n_members": case.members} if case.members > 1 else {}
    config = ModelConfig(case.model, ablation=case.ablation, preset="quick", **extra)

    def progress(event) -> None:  # type: ignore[no-untyped-def]
        if event.stage == "train":
            case.rows.append((event.done, event.total, time.perf_counter(),
                              event.extra.get("eta_s"), event.message))

    original, training.FitEta = training.FitEta, Timed
    try:
        training.train(config, runs[:3], val_runs=runs[3:], epochs=case.epochs, patience=0,
                       progress=progress)
    finally:
        training.FitEta = original


def ratio(eta: float | None, actual: float) -> str:
    if eta is None:
        return "estimating"
    return f"{eta:.2f} s = {eta / actual:.2f}×" if actual > 0 else f"{eta:.2f} s"


def table(case: Case) -> list[str]:
    """The checkpoints of one case as markdown rows."""
    end = case.rows[-1][2]
    batches = [r for r in case.rows if "loss" in r[4]]
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


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "bench"))
    from app_speed import machine

    from rul_core.device import import_backend_quietly

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "assets" / "demo" / "data"))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_eta.md"))
    args = ap.parse_args(argv)
    import_backend_quietly()
    lines = ["| training | batches done | actual time left | ETA shown | former estimate |",
             "|---|---|---|---|---|"]
    for model, ablation, epochs, members in CASES:
        case = Case(model, ablation, epochs, members)
        run_case(case, Path(args.data))
        rows = table(case)
        print("\n".join(rows), flush=True)
        lines += rows
    about = (f"Machine: {machine()}; quick preset, demo data (3 training bearings, 1 "
             "validation), early stopping off. Ratios: the estimate over the time actually left "
             "until the fit's last epoch ended (the forest head and the validation metrics "
             "after it are not in either).")
    text = "\n".join(lines) + f"\n\n{about}\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("# Training ETA (`bench/train_eta.py`)\n\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
