"""``python -m rul_core``: the command-line interface."""

from rul_core.cli import main

raise SystemExit(main())
