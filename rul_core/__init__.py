"""Bearing RUL workbench core: data, signal pipeline, labels, models and explanations."""

__version__ = "0.1.0"
