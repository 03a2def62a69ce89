"""Figures and reports made from artefacts: matplotlib plots, markdown tables, the run report.
It reads files through ``Paths`` and imports no other subpackage, so every stage can use it."""
