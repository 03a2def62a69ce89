"""Stage 2: write models/<comp>/folds.csv (StratifiedKFold, or StratifiedGroupKFold with groups)."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import folds_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, folds_stage, lock=True)
