"""One function per stage script: ``(args, cfg, paths)`` in, artefacts out. Scripts only parse."""

from __future__ import annotations

import argparse
import logging

from .config import Config, dump_yaml
from .data import load_competition
from .paths import Paths

log = logging.getLogger(__name__)


def folds_stage(args: argparse.Namespace, cfg: Config, paths: Paths) -> None:
    from .atomic import write_text
    from .folds import make_folds

    comp = load_competition(cfg, paths)
    make_folds(cfg, paths, comp)
    write_text(paths.folds_config_yaml, dump_yaml(cfg))
