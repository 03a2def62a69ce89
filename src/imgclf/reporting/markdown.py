"""Markdown tables for the reports."""

from __future__ import annotations


def markdown_table(header: list[str], rows: list[list], float_format: str = "{:.4f}",
                   max_rows: int | None = None) -> list[str]:
    """The lines of a markdown table (then a blank line); rows beyond ``max_rows`` are counted, not shown."""
    def cell(value: object) -> str:
        text = float_format.format(value) if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    shown = rows if max_rows is None else rows[:max_rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in shown]
    if len(rows) > len(shown):
        lines.append(f"\n({len(rows) - len(shown)} more rows not shown)")
    return lines + [""]
