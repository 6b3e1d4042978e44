"""Bearing RUL workbench core: data, signal pipeline, labels, models and explanations."""

import os

# Keras 3 on TensorFlow (SPEC §4); keep TensorFlow's C++ start-up chatter out of the CLI and app.
# (oneDNN stays on: switching it off to silence its one notice made inference 2.5x slower.)
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
