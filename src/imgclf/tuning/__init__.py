"""The Optuna search: the space, sampler and pruner, study storage, the trial budget shared by
workers, the objective, and what a study writes."""
