"""Every artefact path, computed in one place, laid out as the README's "Where things are written" says.

Nothing else in the package joins an artefact path: stages ask ``Paths`` for each file they read or write.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imgclf.config.schema import RESERVED_DIRS, Config

DEMO_NAME = "digits"


@dataclass(frozen=True)
class Paths:
    root: Path
    data_dir: Path
    experiment: str

    @classmethod
    def from_config(cls, cfg: Config) -> Paths:
        root = Path(cfg.paths.root).resolve()
        data_dir = Path(cfg.data.dir).resolve() if cfg.data.dir else root / "input" / DEMO_NAME
        return cls(root=root, data_dir=data_dir, experiment=cfg.experiment)

    @property
    def is_demo(self) -> bool:
        return self.data_dir == (self.root / "input" / DEMO_NAME)

    @property
    def comp(self) -> str:
        return self.data_dir.name

    @property
    def comp_dir(self) -> Path:
        return self.root / "models" / self.comp

    @property
    def folds_csv(self) -> Path:
        return self.comp_dir / "folds.csv"

    @property
    def data_fingerprint_json(self) -> Path:
        """Beside folds.csv: a hash of the train ids and labels it was made from."""
        return self.comp_dir / "data_fingerprint.json"

    @property
    def folds_config_yaml(self) -> Path:
        """The config 02_folds.py ran with (its folds settings explain a changed split)."""
        return self.comp_dir / "folds_config.yaml"

    @property
    def classes_json(self) -> Path:
        return self.comp_dir / "classes.json"

    @property
    def solution_csv(self) -> Path:
        """The hidden test labels a data folder may ship (the demo does): 07_score.py --auto uses them."""
        return self.data_dir / "solution.csv"

    @property
    def eda_dir(self) -> Path:
        return self.comp_dir / "eda"

    def eda_file(self, name: str) -> Path:
        """One of the EDA's outputs: its plots and files.csv, duplicates.csv, summary.json, config.yaml."""
        return self.eda_dir / name

    @property
    def eda_report_md(self) -> Path:
        return self.eda_dir / "report.md"

    @property
    def cache_dir(self) -> Path:
        return self.comp_dir / "cache"

    def decoded_cache_npy(self, label: str, size: int, key: str) -> Path:
        """Images of one split decoded at ``size`` px; ``key`` digests the files' names, sizes and mtimes."""
        return self.cache_dir / f"{label}_{size}px_{key}.npy"

    @property
    def lock_file(self) -> Path:
        return self.comp_dir / ".lock"

    @property
    def report_md(self) -> Path:
        return self.comp_dir / "report.md"

    @property
    def report_html(self) -> Path:
        """The run report as one self-contained page (images embedded), rebuilt with report.md."""
        return self.comp_dir / "report.html"

    @property
    def lr_find_dir(self) -> Path:
        """The LR range test's loss-vs-LR plot and table (03_train.py --lr-find)."""
        return self.experiment_dir() / "lr_find"

    def experiment_dir(self, experiment: str | None = None) -> Path:
        return self.comp_dir / (experiment or self.experiment)

    def config_yaml(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "config.yaml"

    def plan_json(self, experiment: str | None = None) -> Path:
        """The training plan and the augmentation evidence the experiment was trained with."""
        return self.experiment_dir(experiment) / "plan.json"

    @property
    def throughput_json(self) -> Path:
        """Measured training throughput per model, side, batch and device (the budget's plan)."""
        return self.comp_dir / "throughput.json"

    @property
    def views_json(self) -> Path:
        """The augmentation probe's evidence, reused while folds.csv is unchanged."""
        return self.comp_dir / "views.json"

    def fold_dir(self, fold: int, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / f"fold{fold}"

    def best_ckpt(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "best.pt"

    def last_ckpt(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "last.pt"

    def model_ckpt(self, fold: int, experiment: str | None, checkpoint: str) -> Path:
        """The checkpoint whose weights OOF, inference, pseudo-labels and CAMs use: last.pt (its
        evaluated weights) under ``train.checkpoint: last``, best.pt under ``best``."""
        return self.last_ckpt(fold, experiment) if checkpoint == "last" else self.best_ckpt(fold, experiment)

    def fold_checkpoints(self, fold: int, experiment: str | None = None) -> tuple[Path, Path]:
        return self.best_ckpt(fold, experiment), self.last_ckpt(fold, experiment)

    def fold_lock(self, fold: int, experiment: str | None = None) -> Path:
        """Held (host and pid inside) while a run trains the fold."""
        return self.fold_dir(fold, experiment) / ".lock"

    def fold_oof(self, fold: int, experiment: str | None = None) -> Path:
        """The finished fold's validation predictions; its presence marks the fold as done."""
        return self.fold_dir(fold, experiment) / "oof.csv"

    def history_csv(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "history.csv"

    def tensorboard_dir(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "tb"

    def learning_curves_png(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "learning_curves.png"

    def confusion_matrix_png(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "confusion_matrix.png"

    def per_class_f1_png(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "per_class_f1.png"

    def errors_dir(self, experiment: str | None = None) -> Path:
        """The OOF error analysis: top-loss grid, confused pairs, per-class table, reliability."""
        return self.experiment_dir(experiment) / "errors"

    def folds_stamp(self, experiment: str | None = None) -> Path:
        """The digest of the folds.csv the experiment was trained on."""
        return self.experiment_dir(experiment) / "folds.sha256"

    def extra_train_json(self, experiment: str | None = None) -> Path:
        """The fingerprint of the data.extra_train set the experiment was trained with."""
        return self.experiment_dir(experiment) / "extra_train.json"

    def pseudo_json(self, experiment: str | None = None) -> Path:
        """A student experiment's teacher, mode and selection (pipelines/05b_pseudo.py)."""
        return self.experiment_dir(experiment) / "pseudo.json"

    def teacher_json(self, fold: int, experiment: str | None = None) -> Path:
        """Which teacher checkpoints (path, mtime, sha256) made this student fold's targets."""
        return self.fold_dir(fold, experiment) / "teacher.json"

    def teacher_targets_npz(self, fold: int, experiment: str | None = None) -> Path:
        return self.fold_dir(fold, experiment) / "teacher_targets.npz"

    def infer_json(self, experiment: str | None = None) -> Path:
        """What test.csv and oof_tta.csv were made from, and the TTA gain."""
        return self.experiment_dir(experiment) / "infer.json"

    def oof_csv(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "oof.csv"

    def oof_tta_csv(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "oof_tta.csv"

    def test_csv(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "test.csv"

    def cv_json(self, experiment: str | None = None) -> Path:
        return self.experiment_dir(experiment) / "cv.json"

    @property
    def tune_dir(self) -> Path:
        return self.comp_dir / "tune"

    @property
    def tune_journal(self) -> Path:
        return self.tune_dir / "journal.log"

    def tune_trial_experiment(self, number: int) -> str:
        """A trial trains as this experiment: its folder is ``experiment_dir`` of it, under tune/."""
        return f"tune/trials/{number}"

    @property
    def tune_outputs_lock(self) -> Path:
        """Held by a worker while it rewrites the study's outputs (workers share one study)."""
        return self.tune_dir / ".outputs.lock"

    def tune_plot_png(self, name: str) -> Path:
        return self.tune_dir / f"{name}.png"

    @property
    def trials_csv(self) -> Path:
        return self.tune_dir / "trials.csv"

    @property
    def best_config_yaml(self) -> Path:
        return self.tune_dir / "best_config.yaml"

    @property
    def ensemble_dir(self) -> Path:
        return self.comp_dir / "ensemble"

    @property
    def submissions_dir(self) -> Path:
        return self.root / "submissions" / self.comp

    @property
    def submission_csv(self) -> Path:
        return self.submissions_dir / "submission.csv"

    def submission_version_csv(self, version: int) -> Path:
        """Earlier final submissions are kept beside submission.csv under numbered names."""
        return self.submissions_dir / f"submission_v{version:03d}.csv"

    @property
    def alternatives_dir(self) -> Path:
        """One submission per ensemble method and per single model, to submit as alternatives."""
        return self.submissions_dir / "alternatives"

    def alternative_csv(self, name: str) -> Path:
        return self.alternatives_dir / f"{name}.csv"

    @property
    def ensemble_scores_csv(self) -> Path:
        return self.ensemble_dir / "scores.csv"

    @property
    def ensemble_scores_png(self) -> Path:
        return self.ensemble_dir / "scores.png"

    @property
    def ensemble_json(self) -> Path:
        return self.ensemble_dir / "ensemble.json"

    @property
    def ensemble_labels_csv(self) -> Path:
        """Multi-label: per-label support, OOF AUC, fitted threshold and F1 of the final method."""
        return self.ensemble_dir / "labels.csv"

    @property
    def ensemble_errors_dir(self) -> Path:
        """The error analysis of the final ensemble's OOF probabilities."""
        return self.ensemble_dir / "errors"

    def experiments(self) -> list[str]:
        """Experiments with a saved config, in name order."""
        if not self.comp_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.comp_dir.glob("*/config.yaml")
                      if p.parent.name not in RESERVED_DIRS and not p.parent.name.startswith("."))

    def is_trained(self, experiment: str | None = None) -> bool:
        """At least one fold of the experiment has trained (a last.pt): it depends on folds.csv."""
        return any(self.experiment_dir(experiment).glob("fold*/last.pt"))

    def trained_experiments(self) -> list[str]:
        return [e for e in self.experiments() if self.is_trained(e)]
