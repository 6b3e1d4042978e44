"""The app's two slowest interactions on a real bearing, in-process, each in a fresh process.

    python bench/real_interactions.py --run ../shared/data/real/femto/Learning_set/Bearing3_1
                                      [--repeats 3] [--before OTHER_CHECKOUT]

*evaluate*: the Evaluate page adding the demo Multimodal-RUL to the comparison
(``evaluation.evaluate`` of the whole run); *explain*: the Explain page's first "Explain this
window" with its default settings (the background windows, then ``views.explain_window``) on
the page's default model, the demo CARL (what ``bench/app_speed.py`` clicks), and
*explain-mm* the same on the demo Multimodal-RUL.
Each process first predicts one window as the Noise lab does (the app has visited it by
then), then times the interaction: wall and process CPU seconds (CPU time moves less when
other jobs share the cores). ``--before`` runs the same in another checkout (e.g. ``git
archive``d from an older commit) alternately with this one.
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


def interaction(run_path: str, which: str, cache: str) -> dict[str, float]:
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

    def click() -> None:
        if which == "evaluate":
            evaluation.evaluate(trained, [run])
        else:
            background = views.explain_background(trained, [run], max_windows=60)
            views.explain_window(trained, run, 0, 1, background, settings)

    wall, cpu = time.perf_counter(), time.process_time()
    click()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def in_fresh_process(root: Path, run_path: str, which: str, cache: str) -> dict[str, float]:
    """:func:`interaction` in a new Python process importing ``root``'s rul_core."""
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); import json; "
            f"sys.path.insert(1, {str(ROOT / 'bench')!r}); import real_interactions as r; "
            f"print(json.dumps(r.interaction({run_path!r}, {which!r}, {cache!r})))")
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
    args = ap.parse_args(argv)
    roots = {"this": ROOT} | ({"before": Path(args.before).resolve()} if args.before else {})
    times: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.repeats):
        for which in ("evaluate", "explain", "explain-mm"):
            for name, root in roots.items():
                t = in_fresh_process(root, args.run, which, args.cache)
                times.setdefault((name, which), []).append(t)
                print(f"{name:>6} | {which:<10} | wall {t['wall']:6.2f} s | cpu {t['cpu']:6.2f} s",
                      flush=True)
    print("\n| checkout | interaction | wall s (median) | CPU s (median) | runs |")
    print("|---|---|---:|---:|---:|")
    for (name, which), ts in times.items():
        print(f"| {name} | {which} | {statistics.median(t['wall'] for t in ts):.2f} | "
              f"{statistics.median(t['cpu'] for t in ts):.2f} | {len(ts)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
