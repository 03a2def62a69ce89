"""The training plans and the augmentation probe's evidence (each experiment's plan.json), as rows
and one line of text, for both report.md and report.html."""

from __future__ import annotations

import json

from imgclf.paths import Paths

PLAN_COLUMNS = ["experiment", "batch", "epochs", "steps/fold", "warm-up", "px", "trained views", "why"]


def plan_rows(paths: Paths, experiments: list[str]) -> tuple[list[list], str | None]:
    """One row per experiment that has a plan.json, and the probe's evidence (the first found) as a
    sentence, or None when no plan holds any."""
    rows, evidence_line = [], None
    for exp in experiments:
        if not paths.plan_json(exp).is_file():
            continue
        record = json.loads(paths.plan_json(exp).read_text())
        plan = record["plan"]
        views = [v for v, p in record.get("augment", {}).items() if p]
        rows.append([exp, plan["batch_size"], plan["epochs"], plan["steps_per_fold"], plan["warmup_epochs"],
                     plan["image_size"], ", ".join(views) or "-", "; ".join(plan["reasons"])])
        evidence = record.get("augment_evidence")
        if evidence and evidence_line is None:
            evidence_line = probe_line(evidence)
    return rows, evidence_line


def probe_line(evidence: dict) -> str:
    seen = ", ".join(f"{v} {e['valid_in_view']:.3f}{_told(e)} ({'on' if e['keep'] else 'off'})"
                     for v, e in evidence["views"].items())
    limit = evidence.get("tell_apart_limit")
    told = "" if limit is None else (" A view is also on when an SVC tells images shown in it from "
                                     f"images shown as they are with an accuracy of at most {limit:.3f} "
                                     "(it looks like the data).")
    return (f"Augmentation probe (RBF SVC on small pixels, {evidence['folds']} folds, "
            f"{evidence['n_valid']} validation images): accuracy {evidence['base']:.3f} as they are "
            f"(chance {evidence['chance']:.3f}, tolerance {evidence['tolerance']:.3f}); "
            f"in each view (classified / told apart from the data): {seen}.{told}")


def _told(view: dict) -> str:
    return f" / told apart {view['tell_apart']:.3f}" if "tell_apart" in view else ""
