"""The common command-line options and the error/logging wrapper every stage script uses."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from imgclf.config.loading import load_config
from imgclf.config.schema import Config
from imgclf.errors import UserError, one_line
from imgclf.lock import hold_lock
from imgclf.logs import setup_logging
from imgclf.optional import hide_wandb_from_timm
from imgclf.paths import Paths

if TYPE_CHECKING:
    from imgclf.training.distributed import DistInfo

# What every stage script runs: its parsed options, the validated config and its paths.
Stage = Callable[[argparse.Namespace, Config, Paths], None]
log = logging.getLogger("imgclf")


def common_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=None,
                        help="competition folder (default: the embedded demo, input/digits)")
    parser.add_argument("--config", type=Path, default=None, help="YAML merged over configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="dotted config override, repeatable (e.g. train.epochs=3)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time budget of the whole run_all.sh (same as --set budget=SECONDS)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.data is not None:
        overrides.insert(0, f"data.dir={args.data.resolve()}")
    if getattr(args, "budget", None) is not None:
        overrides.insert(0, f"budget={args.budget}")
    return _competition_metric(load_config(args.config, overrides), args)


def _competition_metric(cfg: Config, args: argparse.Namespace) -> Config:
    """The mask competition is scored by macro-F1: its layout gets that metric unless ``metric`` is
    set (by --set or the --config file); every other layout keeps the configured default."""
    import yaml

    from imgclf.data.ingest import detect_layout  # no torch
    from imgclf.errors import DataError

    given = any(o.strip().startswith("metric=") for o in args.overrides)
    if args.config is not None:
        given = given or "metric" in (yaml.safe_load(Path(args.config).read_text()) or {})
    if given or cfg.data.dir is None or cfg.metric != "accuracy":
        return cfg
    try:
        layout = cfg.data.layout if cfg.data.layout != "auto" else detect_layout(Path(cfg.data.dir))
    except DataError:
        return cfg  # the stage reports the folder's problem in its own words
    if layout != "mask":
        return cfg
    logging.getLogger(__name__).info("metric: f1_macro, the mask competition's (--set metric=NAME to change)")
    return cfg.updated({"metric": "f1_macro"})


def parse_folds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--folds expects comma-separated fold numbers, got '{text}'") from None


def run_stage(parser: argparse.ArgumentParser, stage: Stage,
              argv: Sequence[str] | None = None, lock: bool = False, distributed: bool = False) -> int:
    """Parse, build the config and paths, run ``stage``; user errors become one ``error:`` line.

    ``lock``: hold models/<comp>/.lock while the stage runs (stages that write artefacts).
    ``distributed``: the stage may run under torchrun (one process per GPU); then rank 0 alone takes
    the lock, one rank per machine prints the error line, and every rank exits non-zero.
    """
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    torchrun = int(os.environ.get("WORLD_SIZE", "1")) > 1  # torch (for DDP) is imported only then
    first_on_node = int(os.environ.get("LOCAL_RANK", "0")) == 0
    try:
        cfg = config_from_args(args)
        paths = Paths.from_config(cfg)
        if torchrun and not distributed:
            raise UserError(f"{Path(sys.argv[0]).name} does not run under torchrun "
                            "(only pipelines/03_train.py does); run it with plain python")
        with _session(cfg, torchrun) as info, _lock(paths, lock, info):
            stage(args, cfg, paths)
    except UserError as exc:
        if args.debug:
            raise
        return _fail(f"error: {one_line(exc)}", 2, first_on_node, torchrun)
    except KeyboardInterrupt:
        how = " (torchrun stops every process after Ctrl-C or when one of them failed)" if torchrun else ""
        code = 128 + (_stopped_by or signal.SIGINT)  # 130 after Ctrl-C, 143 after SIGTERM
        return _fail(f"error: interrupted{how}", code, first_on_node, torchrun)
    except Exception as exc:
        from imgclf.training.distributed import is_peer_failure  # torch: only under torchrun

        if args.debug or not torchrun or not is_peer_failure(exc):
            raise
        # another rank died first and reported why (above, and in torchrun's failure summary)
        return _fail(f"error: another process of this torchrun job failed ({str(exc).splitlines()[0][:160]})",
                     1, first_on_node, torchrun)
    return 0


def _session(cfg: Config, torchrun: bool) -> contextlib.AbstractContextManager[DistInfo | None]:
    if not torchrun:
        return contextlib.nullcontext(None)
    from imgclf.training.distributed import distributed_session  # torch: only under torchrun
    from imgclf.training.engine import pick_device

    return distributed_session(pick_device(cfg))


def _lock(paths: Paths, lock: bool, info: DistInfo | None) -> contextlib.AbstractContextManager:
    if not lock:
        return contextlib.nullcontext()
    if info is None:
        return hold_lock(paths.lock_file)
    from imgclf.training.distributed import held_by_main  # torch: only under torchrun

    return held_by_main(lambda: hold_lock(paths.lock_file), info)  # rank 1 would fail on rank 0's lock


def _fail(line: str, code: int, first_on_node: bool, torchrun: bool) -> int:
    """One ``error:`` line per terminal: under torchrun the ranks fail alike (rank 0 hands its errors
    to the others), so only the first rank of each machine prints; each rank's line also goes into
    torchrun's failure summary."""
    if first_on_node:
        print(line, file=sys.stderr)
    if torchrun:
        from imgclf.training.distributed import record_error  # torch: only under torchrun

        record_error(line)
        if not first_on_node:
            time.sleep(1.0)  # torchrun stops every rank when one exits: let the printing rank print first
    return code


def main_for(parser_factory: Callable[[], argparse.ArgumentParser],
             stage: Stage, lock: bool = False,
             distributed: bool = False) -> None:
    # SIGINT too: a stage started in the background by a script (run_all.sh) inherits it ignored
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    hide_wandb_from_timm()  # before a stage imports timm
    sys.exit(run_stage(parser_factory(), stage, lock=lock, distributed=distributed))


_stopped_by: int | None = None


def _stop(signum: int, frame: object) -> None:
    """Ctrl-C and SIGTERM stop alike: the current epoch is abandoned, last.pt of the last write stays.
    Further signals are ignored, so that a second one (run_all.sh forwards SIGTERM to the running
    stage) cannot break the clean-up into a traceback; SIGKILL still stops at once."""
    global _stopped_by
    _stopped_by = signum
    for other in (signal.SIGINT, signal.SIGTERM):
        signal.signal(other, signal.SIG_IGN)
    raise KeyboardInterrupt
