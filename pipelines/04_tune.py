"""Stage 4: the Optuna search, an alias of ./tune.py (same options, same outputs)."""

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "tune.py"), run_name="__main__")
