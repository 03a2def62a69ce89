"""wandb, an optional package, kept from timm's import.

timm imports wandb whenever it is installed (``timm.utils.summary``, for a logger imgclf never calls
through timm): 3.9 s of every stage that builds a model on two slow cores. A stage process hides it
before timm is imported; the wandb tracker, when asked for, takes it back.
"""

from __future__ import annotations

import sys
from types import ModuleType

_hidden = False


def hide_wandb_from_timm() -> None:
    """Make ``import wandb`` fail at once in this process (a None entry in sys.modules) until
    ``import_wandb``; nothing changes where wandb is already imported."""
    global _hidden
    if "wandb" not in sys.modules:
        sys.modules["wandb"] = None  # type: ignore[assignment]
        _hidden = True


def import_wandb() -> ModuleType:
    """The wandb package; ImportError when it is not installed (or made absent by anyone else)."""
    global _hidden
    if _hidden and "wandb" in sys.modules and sys.modules["wandb"] is None:
        del sys.modules["wandb"]
    _hidden = False
    import wandb

    return wandb
