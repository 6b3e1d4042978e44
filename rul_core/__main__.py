"""``python -m rul_core``: the command-line interface."""

import gc
import sys

from rul_core.cli import main

code = main()
# The exit's last garbage collection over everything TensorFlow and Keras built took 1-2 s
# after the work was done (bench/train_eta.py): skip it, the memory goes back to the system
# anyway (files and the catalog are closed by then).
sys.stdout.flush()
sys.stderr.flush()
gc.freeze()
raise SystemExit(code)
