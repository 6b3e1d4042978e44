"""Explanations: multimodal LRP, LIME, SHAP and their comparison."""
