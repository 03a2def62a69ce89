"""Stage 1: EDA report of train and test (models/<comp>/eda/report.md + PNG plots, summary on the
terminal)."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import eda_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, eda_stage, lock=True)
