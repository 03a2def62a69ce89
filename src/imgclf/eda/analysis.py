"""The EDA's analysis: what a Kaggler checks before training, as numbers and flags.

One pass over every train and test file (``eda.scan``) feeds the analysis here; ``eda.report``
writes ``models/<comp>/eda/report.md`` and the terminal summary, ``eda.plots`` the figures, and
``eda.run`` puts them together.
No torch import: the EDA runs before (and without) a model.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from imgclf.config.schema import Config
from imgclf.data.competition import Competition
from imgclf.data.sizing import auto_image_size, size_from_sides
from imgclf.eda.formats import conversion_notes, format_counts
from imgclf.eda.scan import BAD_STATUSES, EXT_KIND
from imgclf.errors import DataError

log = logging.getLogger(__name__)

IMBALANCE_FLAG = 3.0  # max/min class count from which the imbalance is worth acting on
SHIFT_KS, SHIFT_P = 0.1, 0.01  # a train/test difference is flagged when both are exceeded
GRID_CLASSES, GRID_PER_CLASS = 20, 6


def class_counts(comp: Competition) -> pd.DataFrame:
    counts = np.bincount(comp.train["label"].to_numpy(), minlength=comp.num_classes)
    return pd.DataFrame({"class": comp.classes, "count": counts, "share": counts / max(1, counts.sum())})


def imbalance_ratio(counts: pd.Series) -> float:
    present = counts[counts > 0]
    return float(present.max() / present.min()) if len(present) else float("nan")


def duplicate_groups(files: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """Sets of byte-identical files (zero-byte files excluded: they are reported on their own)."""
    hashed = files[files["md5"] != ""]
    dups = hashed[hashed.duplicated("md5", keep=False)]
    rows = []
    for md5, group in dups.groupby("md5", sort=False):
        train, test = group[group["split"] == "train"], group[group["split"] == "test"]
        labels = sorted({classes[int(v)] for v in train["label"]}) if len(train) else []
        rows.append({"md5": md5, "n_train": len(train), "n_test": len(test),
                     "train_ids": " ".join(train["id"]), "test_ids": " ".join(test["id"]),
                     "labels": " ".join(labels), "conflicting_labels": len(labels) > 1})
    return pd.DataFrame(rows, columns=["md5", "n_train", "n_test", "train_ids", "test_ids", "labels",
                                       "conflicting_labels"])


def readable(files: pd.DataFrame) -> pd.DataFrame:
    """Files that decoded (a truncated file may decode partially: its size still counts)."""
    return files[files["height"].notna()].assign(
        short_side=lambda f: np.minimum(f["height"], f["width"]),
        aspect=lambda f: f["width"] / f["height"],
        kb=lambda f: f["bytes"] / 1024.0,
        brightness=lambda f: f[["mean_r", "mean_g", "mean_b"]].mean(axis=1))


def channel_stats(files: pd.DataFrame) -> dict[str, list[float]]:
    """Pixel-weighted RGB mean/std over all decoded images, in [0, 1] (as transforms normalise)."""
    ok = readable(files)
    if ok.empty:
        return {"mean": [float("nan")] * 3, "std": [float("nan")] * 3}
    pixels = (ok["height"] * ok["width"]).to_numpy(float)
    means = ok[["mean_r", "mean_g", "mean_b"]].to_numpy(float)
    squares = ok[["std_r", "std_g", "std_b"]].to_numpy(float) ** 2 + means**2
    mean = (means * pixels[:, None]).sum(0) / pixels.sum()
    std = np.sqrt(np.maximum((squares * pixels[:, None]).sum(0) / pixels.sum() - mean**2, 0))
    return {"mean": [round(float(v), 4) for v in mean], "std": [round(float(v), 4) for v in std]}


def split_profile(files: pd.DataFrame) -> dict:
    """File types, channels, bit depths and sizes of one split."""
    ok = readable(files)
    sizes = (ok["width"].astype(int).astype(str) + "x" + ok["height"].astype(int).astype(str)).value_counts()
    declared = files["ext"].map(EXT_KIND).fillna("other")
    mismatch = files[files["height"].notna() & (declared != files["kind"])]  # decodable, mislabelled
    profile = {
        "files": len(files), "decoded": len(ok),
        "extensions": files["ext"].value_counts().to_dict(),
        "content_types": files["kind"].value_counts().to_dict(),
        "channels": {int(k): int(v) for k, v in ok["channels"].value_counts().sort_index().items()},
        "dtypes": ok["dtype"].value_counts().to_dict(),
        "distinct_sizes": len(sizes), "top_sizes": sizes.head(5).to_dict(),
        "type_mismatch": mismatch["file"].tolist(),
        "formats": format_counts(files), "modes": ok["mode"].value_counts().to_dict(),
        "conversions": conversion_notes(files),
    }
    for column in ("width", "height", "short_side", "aspect", "kb"):
        values = ok[column]
        profile[column] = {stat: round(float(getattr(values, stat)()), 3) if len(values) else None
                           for stat in ("min", "median", "max")}
    return profile


def size_shift(files: pd.DataFrame) -> list[dict]:
    """Two-sample Kolmogorov-Smirnov test of train vs test per image property."""
    ok = readable(files)
    train, test = ok[ok["split"] == "train"], ok[ok["split"] == "test"]
    rows = []
    if train.empty or test.empty:
        return rows
    for column, name in (("short_side", "short side (px)"), ("aspect", "aspect ratio (w/h)"),
                         ("kb", "file size (KB)"), ("brightness", "mean brightness")):
        result = ks_2samp(train[column], test[column])
        stat, p = float(result.statistic), float(result.pvalue)
        rows.append({"property": name, "column": column,
                     "train_median": round(float(train[column].median()), 3),
                     "test_median": round(float(test[column].median()), 3), "ks": round(stat, 4),
                     "p_value": float(f"{p:.3g}"), "shifted": stat > SHIFT_KS and p < SHIFT_P})
    return rows


def group_profile(comp: Competition) -> dict | None:
    if not comp.has_groups:
        return None
    per_group = comp.train.groupby("group").size()
    classes_per_group = comp.train.groupby("group")["label"].nunique()
    return {"groups": int(per_group.size), "images_per_group": {
        "min": int(per_group.min()), "median": float(per_group.median()), "max": int(per_group.max())},
        "groups_with_several_classes": int((classes_per_group > 1).sum())}


def attribute_counts(comp: Competition) -> dict[str, dict]:
    """Distributions of the extra categorical columns a loader declares in ``attributes``."""
    names = [a for a in comp.attributes if a in comp.train.columns]
    return {a: {str(k): int(v) for k, v in comp.train[a].value_counts().sort_index().items()} for a in names}


def grid_ids(comp: Competition, seed: int) -> dict[int, list[str]]:
    """A few random train ids per class (the first ``GRID_CLASSES`` classes) for the sample grid."""
    rng = np.random.default_rng(seed)
    picks = {}
    for index in range(min(comp.num_classes, GRID_CLASSES)):
        ids = comp.train.loc[comp.train["label"] == index, "id"].astype(str).to_numpy()
        picks[index] = (list(rng.choice(ids, size=min(GRID_PER_CLASS, len(ids)), replace=False))
                        if len(ids) else [])
    return picks


def image_size_choice(cfg: Config, comp: Competition, files: pd.DataFrame) -> dict:
    """The ``data.image_size`` the data implies: median short side, rounded to 8 and capped."""
    train = readable(files[files["split"] == "train"])
    cap = cfg.data.max_auto_image_size
    try:  # exactly what training picks when data.image_size is null (a sample of the train images)
        auto = auto_image_size(comp, cap)
    except DataError:
        auto = None
    return {"median_short_side": float(train["short_side"].median()) if len(train) else None,
            "suggested": size_from_sides(train["short_side"].to_numpy(), cap) if len(train) else None,
            "auto_image_size": auto, "cap": cap, "configured": cfg.data.image_size,
            "used": cfg.data.image_size or auto}


def _names(frame: pd.DataFrame, limit: int = 5) -> str:
    shown = ", ".join(frame["file"].head(limit))
    return shown + (f" (+{len(frame) - limit} more)" if len(frame) > limit else "")


def findings(summary: dict, files: pd.DataFrame, dups: pd.DataFrame) -> list[str]:
    """The one-line problems worth acting on, most important first."""
    out = []
    ratio = summary["imbalance_ratio"]
    if ratio >= IMBALANCE_FLAG:
        out.append(f"class imbalance {ratio:.1f}:1 (largest '{summary['largest_class']}', smallest "
                   f"'{summary['smallest_class']}'): consider metric=f1_macro, train.loss=weighted_ce "
                   "or train.sampler=weighted")
    if summary["unseen_classes"]:
        out.append(f"class(es) with no train image: {summary['unseen_classes']}")
    corrupt = files[files["status"].isin([s for s in BAD_STATUSES if s != "empty"])]
    if len(corrupt):
        out.append(f"{len(corrupt)} corrupt or unreadable file(s): {_names(corrupt)}")
    empty = files[files["status"] == "empty"]
    if len(empty):
        out.append(f"{len(empty)} zero-byte file(s): {_names(empty)}")
    d = summary["duplicates"]
    if d["within_train"]:
        out.append(f"{d['within_train']} set(s) of identical images within train, {d['conflicting_labels']} "
                   "with conflicting labels (see duplicates.csv)")
    if d["within_test"]:
        out.append(f"{d['within_test']} set(s) of identical images within test")
    if d["across"]:
        out.append(f"{d['across_test_images']} test image(s) identical to a train image "
                   "(their label is known)")
    for split in ("train", "test"):
        profile = summary[split]
        if profile["type_mismatch"]:
            out.append(f"{len(profile['type_mismatch'])} {split} file(s) whose content is not what the "
                       f"extension says: {', '.join(profile['type_mismatch'][:5])}")
        if len(profile["channels"]) > 1 or 4 in profile["channels"] or set(profile["dtypes"]) - {"uint8"}:
            out.append(f"{split} mixes channels {profile['channels']} / bit depths {profile['dtypes']}: "
                       "every image is converted to 8-bit RGB")
        converted = {k: n for k, n in profile["formats"].items() if n and k != "grayscale"}
        if converted:
            out.append(f"{split} files converted on decoding: {converted} (see 'Colour modes' below)")
    out += [f"train/test shift in {row['property']}: median {row['train_median']} vs {row['test_median']} "
            f"(KS {row['ks']}, p={row['p_value']})" for row in summary["shift"] if row["shifted"]]
    return out


def analyse(cfg: Config, comp: Competition, files: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    counts = class_counts(comp)
    present = counts[counts["count"] > 0]
    dups = duplicate_groups(files, comp.classes)
    bad = files[files["status"].isin(BAD_STATUSES)]
    summary = {
        "competition": comp.name, "layout": comp.layout, "data_dir": str(comp.data_dir),
        "train_images": len(comp.train), "test_images": len(comp.test), "num_classes": comp.num_classes,
        "class_counts": dict(zip(counts["class"], counts["count"].astype(int).tolist(), strict=True)),
        "imbalance_ratio": round(imbalance_ratio(counts["count"]), 3),
        "largest_class": present.loc[present["count"].idxmax(), "class"],
        "smallest_class": present.loc[present["count"].idxmin(), "class"],
        "unseen_classes": counts.loc[counts["count"] == 0, "class"].tolist(),
        "train": split_profile(files[files["split"] == "train"]),
        "test": split_profile(files[files["split"] == "test"]),
        "bad_files": bad[["split", "id", "file", "bytes", "status", "error"]].to_dict("records"),
        "duplicates": {
            "within_train": int((dups["n_train"] > 1).sum()),
            "within_train_files": int(dups.loc[dups["n_train"] > 1, "n_train"].sum()),
            "conflicting_labels": int(dups["conflicting_labels"].sum()),
            "within_test": int((dups["n_test"] > 1).sum()),
            "across": int(((dups["n_train"] > 0) & (dups["n_test"] > 0)).sum()),
            "across_test_images": int(dups.loc[dups["n_train"] > 0, "n_test"].sum())},
        "channel_stats": {split: channel_stats(files[files["split"] == split])
                          for split in ("train", "test")},
        "shift": size_shift(files),
        "image_size": image_size_choice(cfg, comp, files),
        "groups": group_profile(comp), "attributes": attribute_counts(comp),
    }
    summary["flags"] = findings(summary, files, dups)
    return summary, dups
