"""Optuna search over the config's tune.space (also pipelines/04_tune.py): pruned, resumable, shared by workers."""

from imgclf.cli import main_for
from imgclf.tuning import tune_parser, tune_stage

if __name__ == "__main__":
    main_for(tune_parser, tune_stage)
