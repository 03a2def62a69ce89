"""Logging as every process of a run sets it up: the stage's, and the fold processes it starts."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, not at set-up (stages run
    in-process by tests or notebooks would otherwise keep writing to a closed, replaced stream)."""

    @property
    def stream(self):  # noqa: ANN201 - logging's own attribute
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def setup_logging(debug: bool = False) -> None:
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT, datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, handlers=[handler], force=True)
    for noisy in ("matplotlib", "PIL", "urllib3", "h5py", "timm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
