"""Stage 5: TTA inference of every trained fold/experiment on the test images (and on OOF)."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import infer_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, infer_stage, lock=True)
