"""Stage 7 (local leaderboard): the competition metric of SUBMISSION against SOLUTION, joined by id."""

from pathlib import Path

from imgclf.cli import common_parser, main_for
from imgclf.stages import score_stage


def parser():
    p = common_parser(__doc__)
    p.add_argument("submission", nargs="?", type=Path, help="submission CSV (id column first)")
    p.add_argument("solution", nargs="?", type=Path, help="solution CSV with the true labels (same ids)")
    p.add_argument("--metric", default=None, help="metric name (default: config 'metric')")
    p.add_argument("--auto", action="store_true",
                   help="score submissions/<comp>/submission.csv against <data dir>/solution.csv "
                        "if it exists")
    return p


if __name__ == "__main__":
    main_for(parser, score_stage)
