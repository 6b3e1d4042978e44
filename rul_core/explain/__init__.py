"""Explanations: multimodal LRP, LIME, SHAP and their side-by-side comparison.

Modules: ``lrp`` (graph-walking engine + rule sets), ``lime_explain``, ``shap_explain``,
``compare`` (same window, same scale, rank agreement, deletion/insertion faithfulness, cost),
``common`` (inputs by modality, batched prediction, ImR column bands, the image split),
``warm`` (what an explanation traces, done in the background before the first click).
"""
