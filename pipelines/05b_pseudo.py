"""Stage 5b: pseudo-labels or distillation (pseudo.* in the config; nothing unless pseudo.enabled):
a student experiment trained per fold on targets from the same fold's teacher models, then TTA-inferred
so that the ensemble uses it like any other experiment."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import pseudo_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, pseudo_stage, lock=True)
