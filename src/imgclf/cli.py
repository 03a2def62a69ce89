"""The common command-line options and the error/logging wrapper every stage script uses."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .config import Config, load_config
from .errors import UserError
from .lock import hold_lock
from .paths import Paths

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
log = logging.getLogger("imgclf")


def common_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=None,
                        help="competition folder (default: the embedded demo, input/digits)")
    parser.add_argument("--config", type=Path, default=None, help="YAML merged over configs/default.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="dotted config override, repeatable (e.g. train.epochs=3)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = list(args.overrides)
    if args.data is not None:
        overrides.insert(0, f"data.dir={args.data.resolve()}")
    return load_config(args.config, overrides)


def parse_folds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise UserError(f"--folds expects comma-separated fold numbers, got '{text}'") from None


def setup_logging(debug: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format=LOG_FORMAT,
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    for noisy in ("matplotlib", "PIL", "urllib3", "h5py", "timm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_stage(parser: argparse.ArgumentParser, stage: Callable[[argparse.Namespace, Config, Paths], object],
              argv: Sequence[str] | None = None, lock: bool = False) -> int:
    """Parse, build the config and paths, run ``stage``; user errors become one ``error:`` line.

    ``lock``: hold models/<comp>/.lock while the stage runs (stages that write artefacts).
    """
    args = parser.parse_args(argv)
    setup_logging(args.debug)
    try:
        cfg = config_from_args(args)
        paths = Paths.from_config(cfg)
        with hold_lock(paths.lock_file) if lock else contextlib.nullcontext():
            stage(args, cfg, paths)
    except UserError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0


def main_for(parser_factory: Callable[[], argparse.ArgumentParser],
             stage: Callable[[argparse.Namespace, Config, Paths], object], lock: bool = False) -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(run_stage(parser_factory(), stage, lock=lock))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM stops like Ctrl-C: the current epoch is abandoned, last.pt of the previous one stays."""
    raise KeyboardInterrupt
