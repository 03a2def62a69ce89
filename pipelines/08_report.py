"""Stage 8: rebuild models/<comp>/report.md and report.html from the artefacts; print where to look
(the report, the TensorBoard command, optuna-dashboard on the tuning study's storage)."""

from imgclf.cli import common_parser, main_for
from imgclf.stages import report_stage


def parser():
    return common_parser(__doc__)


if __name__ == "__main__":
    main_for(parser, report_stage)
