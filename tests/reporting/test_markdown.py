"""Markdown tables: floats formatted, pipes escaped, long tables cut with a count."""

from __future__ import annotations

from imgclf.reporting.markdown import markdown_table


def test_table_formats_floats_escapes_pipes_and_counts_hidden_rows() -> None:
    lines = markdown_table(["name", "score"], [["a|b", 0.123456], ["c", 1], ["d", 2.0]], max_rows=2)
    assert lines == ["| name | score |", "|---|---|", "| a\\|b | 0.1235 |", "| c | 1 |",
                     "\n(1 more rows not shown)", ""]
