"""Stage 4: Optuna search over the config's tune.space (the same as ./tune.py)."""

from imgclf.cli import main_for
from imgclf.tuning import tune_parser, tune_stage

if __name__ == "__main__":
    main_for(tune_parser, tune_stage)
