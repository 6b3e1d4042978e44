"""Explain page cost per window: eager against compiled predictions, and a reused SHAP explainer.

Usage::

    python bench/explain_speed.py [--repeats 2] [--threads 2]

For each shipped demo model (`assets/demo`), explains window 0 of the first demo run with the
Explain page's default settings (LRP with the model's default rules, LIME 300 samples x 3 seeds,
SHAP 100 samples, 25 bands or segments, 5 random orderings) two ways:

- **eager**: every perturbed input predicted by calling the model eagerly (``model(x,
  training=False)``) and a new SHAP GradientExplainer per window (the product before session
  19), where recurrent layers run step by step in Python;
- **compiled**: through a compiled prediction function (``predict_on_batch`` until branch
  speed-real, now ``rul_core.models.build.inference_function``, what
  ``rul_core.explain.common.predict`` calls), a new SHAP explainer per window;
- **compiled, SHAP reused**: the model's GradientExplainer and its traced gradient function
  kept between windows (since branch explainwarm: one per model, any background; LIME on the
  TF features and the deletion curves through the image split), LRP eager: the Explain page
  after a first click without a warm-up;
- **warmed**: after the Explain page's warm-up (``rul_core.explain.warm.warm_up``): the same,
  with LRP as one compiled graph.

Best of ``--repeats`` timed calls after one warm-up call each (tracing). Also checks that every
way gives the same attributions and faithfulness curves (to float32 round-off). Prints a
markdown table and the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]


def _eager_predict(model, inputs, batch_size: int = 256, output_index: int = 0) -> np.ndarray:
    """The product's explainer prediction before session 19 (eager calls)."""
    n = int(inputs[0].shape[0])
    out = []
    for s in range(0, n, batch_size):
        batch = [np.asarray(x[s: s + batch_size], dtype=np.float32) for x in inputs]
        y = model(batch if isinstance(model.input, list) else batch[0], training=False)
        out.append(np.asarray(y).reshape(len(batch[0]), -1)[:, output_index])
    return np.concatenate(out).astype(np.float64) if out else np.zeros(0)


def _patched(eager: bool):
    """Point every module that imported ``predict`` at the eager or the compiled version."""
    from rul_core.explain import common, compare, lime_explain, shap_explain

    fn = _eager_predict if eager else _COMPILED
    for mod in (common, compare, lime_explain, shap_explain):
        if hasattr(mod, "predict"):
            mod.predict = fn


_COMPILED = None


def main(argv: list[str] | None = None) -> int:
    global _COMPILED
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from phm2012 import machine_line, markdown

    from rul_core import views
    from rul_core.bundle import load_bundle
    from rul_core.data import load_dataset
    from rul_core.explain import common, shap_explain, warm
    from rul_core.explain.compare import CompareSettings, compare_window, default_rules

    _COMPILED = common.predict
    demo = ROOT / "assets" / "demo"
    run = load_dataset(demo / "data").runs[0]
    rows = []
    for bundle in sorted(p for p in demo.iterdir() if (p / "card.json").exists()):
        trained = load_bundle(bundle)
        model = trained.models[0]
        background = views.explain_background(trained, [run], max_windows=60)
        inputs, _ = views.model_inputs(trained, run)
        settings = CompareSettings(rules=default_rules(trained.config.name), lime_samples=300,
                                   lime_seeds=(0, 1, 2), shap_samples=100, shap_background=30,
                                   n_random=5)
        found = {}
        for way in ("eager", "compiled", "reused", "warmed"):
            _patched(way == "eager")
            if way == "warmed":
                warm.warm_up(model, settings.rules)  # LRP compiled as well
            compare_window(model, inputs, 0, background, settings)  # warm-up: tracing
            best, comp = float("inf"), None
            for _ in range(max(1, args.repeats)):
                if way in ("eager", "compiled"):  # a new SHAP explainer, as before session 19
                    model.__dict__.pop(shap_explain._EXPLAINER_ATTR, None)
                    model.__dict__.pop(getattr(shap_explain, "_GRADIENTS_ATTR", ""), None)
                t0 = time.perf_counter()
                comp = compare_window(model, inputs, 0, background, settings)
                best = min(best, time.perf_counter() - t0)
            found[way] = (best, comp)
        _patched(False)
        (te, ce), (tc, _), (tr, cr) = found["eager"], found["compiled"], found["reused"]
        tw, cw = found["warmed"]
        same = all(np.allclose(ce.raw[m], c.raw[m], rtol=1e-3, atol=1e-5) for m in ce.raw
                   for c in (cr, cw)) and all(
            np.allclose(ce.curves[m]["deletion_pred"], c.curves[m]["deletion_pred"], atol=1e-5)
            for m in ce.curves for c in (cr, cw))
        rows.append({"model": trained.config.name, "bundle": bundle.name,
                     "eager s": te, "compiled s": tc, "compiled, SHAP reused s": tr,
                     "warmed s": tw, "speed-up": te / tw,
                     "LRP s (reused / warmed)":
                         f"{cr.seconds['lrp']:.3f} / {cw.seconds['lrp']:.3f}",
                     "LIME s": cw.seconds.get("lime", float("nan")),
                     "SHAP s": cw.seconds.get("shap", float("nan")),
                     "same attributions": same})
    print("# Explain page cost per window: eager against compiled predictions, SHAP explainer "
          "rebuilt against reused, LRP eager against compiled (warmed)\n")
    print(markdown(rows, list(rows[0])))
    print(f"\n{machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
