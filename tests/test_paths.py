"""Paths lays the artefacts out as the README's "Where things are written" says, from one root."""

from __future__ import annotations

from pathlib import Path

from imgclf.config.loading import load_config
from imgclf.paths import Paths


def test_contract_paths_from_the_root_and_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "data" / "leaves"
    paths = Paths.from_config(load_config(None, [f"paths.root={tmp_path}", f"data.dir={data}",
                                                 "experiment=effnet"]))
    comp = tmp_path / "models" / "leaves"
    assert (paths.comp, paths.data_dir, paths.is_demo) == ("leaves", data, False)
    assert paths.folds_csv == comp / "folds.csv"
    assert paths.config_yaml() == comp / "effnet" / "config.yaml"
    assert (paths.best_ckpt(2), paths.last_ckpt(2)) == (comp / "effnet/fold2/best.pt",
                                                        comp / "effnet/fold2/last.pt")
    assert (paths.oof_csv("other"), paths.test_csv()) == (comp / "other/oof.csv", comp / "effnet/test.csv")
    assert (paths.trials_csv, paths.best_config_yaml) == (comp / "tune/trials.csv",
                                                          comp / "tune/best_config.yaml")
    assert paths.submission_csv == tmp_path / "submissions" / "leaves" / "submission.csv"
    assert paths.submission_version_csv(7).name == "submission_v007.csv"
    assert paths.experiment_dir(paths.tune_trial_experiment(3)) == comp / "tune" / "trials" / "3"
    assert paths.solution_csv == data / "solution.csv"


def test_the_demo_lives_under_input(tmp_path: Path) -> None:
    paths = Paths.from_config(load_config(None, [f"paths.root={tmp_path}"]))
    assert paths.is_demo and paths.data_dir == tmp_path / "input" / "digits" and paths.comp == "digits"


def test_experiments_are_folders_with_a_config_and_never_stage_outputs(tmp_path: Path) -> None:
    paths = Paths.from_config(load_config(None, [f"paths.root={tmp_path}"]))
    for name in ("b", "a", "tune", "eda", ".hidden"):
        paths.config_yaml(name).parent.mkdir(parents=True)
        paths.config_yaml(name).write_text("{}\n")
    paths.last_ckpt(0, "b").parent.mkdir(parents=True)
    paths.last_ckpt(0, "b").write_bytes(b"")
    assert paths.experiments() == ["a", "b"]
    assert paths.trained_experiments() == ["b"]
