"""Optuna search over the config's tune.space (also pipelines/04_tune.py): pruned, resumable, shared
by workers."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import tune_stage


def parser():
    p = common_parser("Optuna search over tune.space; resumable, prunes bad trials, several workers "
                      "may share one study. Writes models/<comp>/tune/{best_config.yaml,trials.csv,*.png}.")
    p.add_argument("--trials", type=int,
                   help="trials in total for the study, COMPLETE + PRUNED (tune.trials)")
    p.add_argument("--timeout", type=float, help="stop starting trials after S seconds (tune.timeout)")
    p.add_argument("--study", help="study name (tune.study; default <comp>-<experiment>)")
    p.add_argument("--storage", help="postgresql+psycopg://user@host/db or a journal file "
                                     "(tune.storage; default models/<comp>/tune/journal.log)")
    p.add_argument("--folds", help="comma-separated folds each trial trains (tune.folds)")
    p.add_argument("--n-startup-trials", type=int, help="random trials before TPE (tune.n_startup_trials)")
    return p


if __name__ == "__main__":
    main_for(parser, tune_stage)
