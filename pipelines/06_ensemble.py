"""Stage 6: hard/soft/weighted voting, rank/geometric means and stacking on OOF; writes the submission."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import ensemble_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, ensemble_stage, lock=True)
