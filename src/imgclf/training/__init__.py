"""Training: datasets and transforms, the epoch engine, optimisers, checkpoints, one fold, the
cross-validation of an experiment, and torchrun (DDP) support."""
