"""TTA inference of trained experiments, and reading the prediction files they leave (the latter
without torch, so ensembling needs none)."""
