"""Stage 3: train every fold (or --folds 0,2): checkpoints, logs, OOF predictions; resumes and skips.

Also runs under torchrun (DistributedDataParallel, one process per GPU):
torchrun --nproc-per-node=N pipelines/03_train.py [options]
"""

from imgclf.cli import common_parser, main_for
from imgclf.stages import train_stage


def parser():
    p = common_parser(__doc__)
    p.add_argument("--folds", default=None, help="comma-separated folds to train (default: all)")
    p.add_argument("--tuned", action="store_true",
                   help="train models/<comp>/tune/best_config.yaml as experiment <experiment>_tuned")
    p.add_argument("--extra", action="store_true",
                   help="train each of plan.extra_models as experiment <experiment>_<model>")
    p.add_argument("--lr-find", action="store_true",
                   help="run the LR range test on fold 0 (plot + suggested train.lr) instead of training")
    p.add_argument("--write-config", metavar="FILE", default=None,
                   help="with --lr-find: set train.lr in this YAML config (other keys kept)")
    return p


if __name__ == "__main__":
    # no competition-wide lock: run_cv locks each fold it trains, so that machines sharing
    # models/<comp>/ can train different folds at the same time
    main_for(parser, train_stage, distributed=True)
