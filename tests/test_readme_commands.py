"""Every ``python -m rul_core`` command the README shows parses with the real CLI parser, so
the documentation cannot drift from the options (a renamed flag fails here)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from rul_core.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"
PREFIX = "python -m rul_core"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`]*)`")


def readme_commands(text: str) -> list[str]:
    """The README's ``python -m rul_core`` commands: each line of a fenced block that runs
    one (``# comments`` and ``VAR=value`` prefixes dropped), and each inline code span that is
    one (joined across line breaks, ``[OPTIONAL]`` placeholders dropped)."""
    commands = []
    for block in FENCE.findall(text):
        for line in block.splitlines():
            code = line.split(" #")[0].strip()
            if PREFIX in code:
                commands.append(code[code.index(PREFIX):])
    prose = FENCE.sub("", text)
    for span in INLINE.findall(prose):
        if span.startswith(PREFIX):
            commands.append(re.sub(r"\[[^\]]*\]", "", " ".join(span.split())).strip())
    return commands


def test_readme_lists_the_commands_it_documents() -> None:
    """The extraction itself finds the quick-start block and the inline mentions (a README
    rewrite that loses them fails here instead of silently testing nothing)."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    subcommands = {shlex.split(c)[3] for c in commands if len(shlex.split(c)) > 3}
    assert {"inspect", "synth", "features", "train", "evaluate", "crossval", "predict",
            "phm2012", "explain", "models"} <= subcommands
    assert any("--rescan" in c for c in commands)  # an inline span


def test_extraction_of_fences_comments_and_inline_spans() -> None:
    text = ("intro `python -m rul_core models --rescan [FOLDER]` and\n"
            "`python -m rul_core crossval --model rc_lstm\n--every 6` end\n"
            "```bash\nKERAS_BACKEND=jax python -m rul_core train --model carle   # note\n"
            "echo other\n```\n")
    assert readme_commands(text) == [
        "python -m rul_core train --model carle",
        "python -m rul_core models --rescan",
        "python -m rul_core crossval --model rc_lstm --every 6",
    ]


@pytest.mark.parametrize("command", readme_commands(README.read_text(encoding="utf-8")))
def test_readme_command_parses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The command parses (``--help`` exits 0); a bare ``python -m rul_core train`` in prose
    names a subcommand that exists."""
    argv = shlex.split(command)[3:]
    parser = build_parser()
    if len(argv) == 1 and not argv[0].startswith("-"):
        subparsers = next(a for a in parser._actions if a.dest == "command")
        assert argv[0] in subparsers.choices, command
        return
    if "--help" in argv:
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(argv)
        assert stop.value.code == 0
        return
    try:
        args = parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"README command does not parse: {command}\n{capsys.readouterr().err}")
    assert getattr(args, "func", None) is not None, command
