"""Command-line interface: ``python -m rul_core <subcommand> --help``.

Each module in ``SUBCOMMAND_MODULES`` exposes ``register(subparsers)``, which adds its
subcommands and sets ``func`` (taking the parsed args, returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable
from typing import Any

from rul_core.errors import RulError

SUBCOMMAND_MODULES = (
    "rul_core.cli.data_cmds",  # inspect, synth
    "rul_core.cli.features_cmd",  # features
    "rul_core.cli.model_cmds",  # train, evaluate, predict, phm2012, models (+ cross-validations)
    "rul_core.cli.crossval_cmd",  # crossval
    "rul_core.cli.explain_cmd",  # explain
    "rul_core.cli.demo_cmd",  # demo-assets
)

# Subcommands that build or load models: Keras is imported up front, with TensorFlow's
# start-up notices filtered out (``device.import_backend_quietly``).
MODEL_COMMANDS = frozenset(
    {"train", "evaluate", "predict", "phm2012", "crossval", "explain", "demo-assets"})


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    """``warning: <message>``: what a command-line user needs, without the source line."""
    return f"warning: {message}\n"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="python -m rul_core",
        description="Bearing RUL workbench: read runs, extract ImR/TF features, train, explain.",
    )
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and return 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    previous_format, previous_show = warnings.formatwarning, warnings.showwarning
    warnings.formatwarning = _one_line_warning
    warnings.showwarning = _once(previous_show)
    try:
        return _run(args)
    finally:
        warnings.formatwarning, warnings.showwarning = previous_format, previous_show


def _once(show: Callable[..., None]) -> Callable[..., None]:
    """``show`` for each distinct warning (category and text) once per command: the same band
    notice comes from every run's feature extraction. (The 'once' filter cannot do this: any
    change of the filters meanwhile, as libraries make, resets its memory.)"""
    shown: set[tuple[type[Warning], str]] = set()

    def show_once(message: Warning | str, category: type[Warning], *args: Any,
                  **kwargs: Any) -> None:
        key = (category, str(message))
        if key not in shown:
            shown.add(key)
            show(message, category, *args, **kwargs)

    return show_once


def _run(args: argparse.Namespace) -> int:
    """Run the parsed subcommand; user errors print one line on stderr and return 2."""
    try:
        if args.command in MODEL_COMMANDS:
            from rul_core.device import import_backend_quietly

            import_backend_quietly()
        return int(args.func(args) or 0)
    except RulError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return 130
