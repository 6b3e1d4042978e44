"""Plain-text tables for the terminal: each column as wide as its widest cell."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]],
               right: Collection[int] = (), gap: str = "  ") -> list[str]:
    """The lines of a table: the header, a rule and one line per row, columns separated by
    ``gap``, those in ``right`` right-aligned (numbers), trailing blanks trimmed."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return gap.join(c.rjust(w) if i in right else c.ljust(w)
                        for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    top = line(header)
    return [top, "-" * len(top), *(line(r) for r in rows)]
