"""The app's two slowest interactions on a real bearing, in-process, each in a fresh process.

    python bench/real_interactions.py --run ../shared/data/real/femto/Learning_set/Bearing3_1
                                      [--repeats 3] [--before OTHER_CHECKOUT]
                                      [--only explain explain-mm] [--think 0 3 8]
                                      [--read 3]

*evaluate*: the Evaluate page adding the demo Multimodal-RUL to the comparison
(``evaluation.evaluate`` of the whole run); *explain*: the Explain page's first "Explain this
window" with its default settings (the background windows, then ``views.explain_window``) on
the page's default model, the demo CARL (what ``bench/app_speed.py`` clicks), and
*explain-mm* the same on the demo Multimodal-RUL.
Each process first predicts one window as the Noise lab does (the app has visited it by
then), then opens the Explain page (``views.warm_explain`` where the checkout has it: the
page starts it after drawing), waits ``--think`` seconds (the analyst picking a window; 0:
the click comes at once), and times the interaction: wall and process CPU seconds (CPU time
moves less when other jobs share the cores; it counts every thread, so a warm-up still
running in the background is in it). The explain cases then time a *second* click on another
window (snapshot 300) with the same background windows (the page keeps them), ``--read``
seconds after the first (the analyst reading its result).
``--before`` runs the same in another checkout (e.g. ``git archive``d from an older commit)
alternately with this one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("evaluate", "explain", "explain-mm")


def interaction(run_path: str, which: str, cache: str, think: float = 0.0, read: float = 0.0
                ) -> dict[str, float]:
    """Time one interaction in this process (the checkout on ``sys.path`` first)."""
    warnings.filterwarnings("ignore")
    from rul_core import evaluation, views
    from rul_core.bundle import load_bundle
    from rul_core.data import load_dataset
    from rul_core.explain import compare

    dataset = load_dataset(run_path, cache_dir=cache)
    run = dataset.run(dataset.run_names[0])
    bundle = "model" if which == "explain" else "model_multimodal"  # the demo CARL / MM-RUL
    trained = load_bundle(Path(sys.path[0]) / "assets" / "demo" / bundle)
    views.window_prediction(trained, run, 0, 0)
    settings = compare.CompareSettings(  # the Explain page's defaults
        methods=tuple(compare.METHODS), rules=compare.default_rules(trained.config.name),
        n_bands=25, lime_samples=300, lime_seeds=(0, 1, 2), shap_samples=100,
        shap_background=30, n_random=5)
    if which != "evaluate" and hasattr(views, "warm_explain"):
        views.warm_explain(trained)  # the Explain page, once drawn
    time.sleep(think)
    background: list = []

    def click() -> None:
        if which == "evaluate":
            evaluation.evaluate(trained, [run])
        else:
            background[:] = views.explain_background(trained, [run], max_windows=60)
            views.explain_window(trained, run, 0, 1, background, settings)

    wall, cpu = time.perf_counter(), time.process_time()
    click()
    out = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
    if which != "evaluate":
        time.sleep(read)
        wall, cpu = time.perf_counter(), time.process_time()
        views.explain_window(trained, run, 300, 2, background, settings)
        out |= {"wall2": time.perf_counter() - wall, "cpu2": time.process_time() - cpu}
    return out


def in_fresh_process(root: Path, run_path: str, which: str, cache: str, think: float = 0.0,
                     read: float = 0.0) -> dict[str, float]:
    """:func:`interaction` in a new Python process importing ``root``'s rul_core."""
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); import json; "
            f"sys.path.insert(1, {str(ROOT / 'bench')!r}); import real_interactions as r; "
            f"print(json.dumps(r.interaction({run_path!r}, {which!r}, {cache!r}, {think!r}, "
            f"{read!r})))")
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a real bearing folder (read in place)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default=None, help="another checkout to compare with")
    ap.add_argument("--cache", default=str(Path("/tmp") / "rul_real_interactions_cache"))
    ap.add_argument("--only", nargs="+", choices=CASES, default=list(CASES))
    ap.add_argument("--think", nargs="+", type=float, default=[0.0],
                    help="seconds between opening the Explain page and the click (each value "
                         "a case of its own)")
    ap.add_argument("--read", type=float, default=0.0,
                    help="seconds between the first and the second Explain click")
    args = ap.parse_args(argv)
    roots = {"this": ROOT} | ({"before": Path(args.before).resolve()} if args.before else {})
    cases = [(w, 0.0) for w in args.only if w == "evaluate"] + [
        (w, s) for w in args.only if w != "evaluate" for s in args.think]
    times: dict[tuple[str, str, float], list[dict[str, float]]] = {}
    for _ in range(args.repeats):
        for which, think in cases:
            for name, root in roots.items():
                t = in_fresh_process(root, args.run, which, args.cache, think, args.read)
                times.setdefault((name, which, think), []).append(t)
                second = (f" | 2nd wall {t['wall2']:5.2f} s cpu {t['cpu2']:5.2f} s"
                          if "wall2" in t else "")
                print(f"{name:>6} | {which:<10} | think {think:3.1f} s | wall {t['wall']:6.2f} s "
                      f"| cpu {t['cpu']:6.2f} s{second}", flush=True)

    def med(ts: list[dict[str, float]], key: str) -> str:
        return f"{statistics.median(t[key] for t in ts):.2f}" if key in ts[0] else "–"

    print("\n| checkout | interaction | think (s) | wall s | CPU s | 2nd click wall s | "
          "2nd click CPU s | runs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for (name, which, think), ts in times.items():
        print(f"| {name} | {which} | {think:g} | {med(ts, 'wall')} | {med(ts, 'cpu')} | "
              f"{med(ts, 'wall2')} | {med(ts, 'cpu2')} | {len(ts)} |")
    print("\n(medians)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
