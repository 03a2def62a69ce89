"""The EDA stage: one pass over every file, the analysis, its plots and its markdown report.
Nothing here imports torch: the EDA runs before (and without) a model."""
