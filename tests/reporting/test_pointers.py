"""The pointers run_all.sh ends with: the report, TensorBoard and optuna-dashboard commands."""

from __future__ import annotations

from pathlib import Path

from imgclf.atomic import write_text
from imgclf.config.loading import load_config
from imgclf.paths import Paths
from imgclf.reporting.pointers import pointer_lines


def test_pointers_name_what_exists(tmp_path: Path) -> None:
    cfg = load_config(None, [f"paths.root={tmp_path}"])
    paths = Paths.from_config(cfg)
    assert [line.split(":")[0] for line in pointer_lines(cfg, paths)] == ["report"]
    (paths.tensorboard_dir(0)).mkdir(parents=True)
    write_text(paths.tune_journal, "")
    lines = pointer_lines(cfg, paths)
    assert str(paths.report_html) in lines[0]
    assert lines[1].endswith(f"tensorboard --logdir {paths.comp_dir}")
    assert lines[2].endswith(f"optuna-dashboard {paths.tune_journal}")


def test_a_database_password_is_not_printed(tmp_path: Path) -> None:
    cfg = load_config(None, [f"paths.root={tmp_path}", "tune.storage=postgresql://ann:s3cret@db:5432/optuna"])
    line = pointer_lines(cfg, Paths.from_config(cfg))[-1]
    assert "optuna-dashboard 'postgresql://ann:***@db:5432/optuna'" in line and "s3cret" not in line
