"""The EDA's markdown report and its short terminal summary, both built from the summary dict."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from imgclf.reporting.markdown import markdown_table

MAX_ROWS = 50  # longer lists stay in files.csv / duplicates.csv


def _table(header: list[str], rows: list[list]) -> list[str]:
    return markdown_table(header, rows, float_format="{:.4g}", max_rows=MAX_ROWS)


def _figure(figures: dict[str, str], key: str) -> list[str]:
    return [f"![{key}]({figures[key]})", ""] if key in figures else []


def _classes(summary: dict, figures: dict[str, str]) -> list[str]:
    counts = summary["class_counts"]
    total = max(1, sum(counts.values()))
    out = ["## Classes", "", f"{summary['num_classes']} classes; imbalance ratio (largest/smallest) "
           f"**{summary['imbalance_ratio']:.2f}:1** ('{summary['largest_class']}' vs "
           f"'{summary['smallest_class']}').", ""]
    out += _table(["class", "train images", "share"], [[k, v, f"{v / total:.1%}"] for k, v in counts.items()])
    return out + _figure(figures, "classes")


def _files(summary: dict, figures: dict[str, str]) -> list[str]:
    out = ["## Files and image sizes", ""]
    rows = []
    for split in ("train", "test"):
        p = summary[split]
        rows.append([split, p["files"], p["decoded"], _kv(p["extensions"]), _kv(p["content_types"]),
                     _kv(p["channels"]), _kv(p["dtypes"]), p["distinct_sizes"], _kv(p["top_sizes"]),
                     _range(p["short_side"]), _range(p["aspect"]), _range(p["kb"])])
    out += _table(["split", "files", "decoded", "extensions", "content", "channels", "bit depth",
                   "distinct sizes", "most common (WxH)", "short side min/median/max",
                   "aspect min/median/max", "KB min/median/max"], rows)
    out += _figure(figures, "formats") + _figure(figures, "sizes")
    out += _conversions(summary)
    size = summary["image_size"]
    used = (f"configured **data.image_size={size['configured']}**" if size["configured"]
            else f"training will use **data.image_size={size['auto_image_size']}** (auto)")
    out += [f"Image size: median train short side {size['median_short_side']} px -> suggested "
            f"`data.image_size={size['suggested']}` (multiple of 8, capped at data.max_auto_image_size="
            f"{size['cap']}); {used}.", ""]
    return out


def _conversions(summary: dict) -> list[str]:
    """What decoding will convert, and how, per split (the categories of ``eda.formats``)."""
    out = ["### Colour modes, orientation, transparency, bit depth", ""]
    out += _table(["split", "Pillow modes", *summary["train"]["formats"]],
                  [[split, _kv(summary[split]["modes"]), *summary[split]["formats"].values()]
                   for split in ("train", "test")])
    notes = [f"- {split}: {note}" for split in ("train", "test") for note in summary[split]["conversions"]]
    return out + (notes or ["Nothing to convert: every image is 8-bit RGB or grey, upright, opaque."]) + [""]


def _kv(mapping: dict) -> str:
    return ", ".join(f"{k}: {v}" for k, v in mapping.items()) or "-"


def _range(stats: dict) -> str:
    return " / ".join("-" if stats[k] is None else f"{stats[k]:g}" for k in ("min", "median", "max"))


def _problems(summary: dict, dups: pd.DataFrame) -> list[str]:
    out = ["## Corrupt, unreadable and zero-byte files", ""]
    bad = summary["bad_files"]
    out += _table(["split", "id", "file", "bytes", "status", "error"],
                  [[b["split"], b["id"], b["file"], b["bytes"], b["status"], b["error"]] for b in bad]) \
        if bad else ["None: every file decoded.", ""]
    d = summary["duplicates"]
    out += ["## Exact duplicates (identical bytes)", "",
            f"- within train: {d['within_train']} set(s), {d['within_train_files']} files, "
            f"{d['conflicting_labels']} set(s) with **conflicting labels**",
            f"- within test: {d['within_test']} set(s)",
            f"- across train/test: {d['across']} set(s), {d['across_test_images']} test image(s)", ""]
    if len(dups):
        rows = [[r.md5[:10], r.train_ids, r.test_ids, r.labels,
                 "**CONFLICT**" if r.conflicting_labels else ""]
                for r in dups.itertuples()]
        out += _table(["md5", "train ids", "test ids", "train labels", "labels"], rows)
    return out


def _stats(summary: dict, figures: dict[str, str]) -> list[str]:
    out = ["## Per-channel mean / std (RGB, 0-1)", ""]
    out += _table(["split", "mean", "std"],
                  [[s, v["mean"], v["std"]] for s, v in summary["channel_stats"].items()])
    out += _figure(figures, "channels")
    out += ["## Train vs test", ""]
    if summary["shift"]:
        rows = [[r["property"], r["train_median"], r["test_median"], r["ks"], r["p_value"],
                 "**yes**" if r["shifted"] else "no"] for r in summary["shift"]]
        out += _table(["property", "train median", "test median", "KS statistic", "p-value", "shift"], rows)
    else:
        out += ["Not compared: a split has no decodable image.", ""]
    return out + _figure(figures, "shift")


def _crop(summary: dict, figures: dict[str, str]) -> list[str]:
    crop = summary.get("crop")
    if not crop:
        return []
    share = crop["fell_back"] / max(1, crop["checked"])
    sample = ("" if crop["checked"] == crop["of"]
              else f" (a random sample of {crop['checked']} of {crop['of']})")
    return [f"## Crop (data.crop={crop['mode']})", "",
            f"Margin {crop['margin']}, centre fraction {crop['fraction']}: **{crop['fell_back']} of "
            f"{crop['checked']} images ({share:.1%}) fell back to the centre crop**{sample}.", ""] + \
        _figure(figures, "crops")


def _groups_and_attributes(summary: dict, figures: dict[str, str]) -> list[str]:
    out = []
    groups = summary["groups"]
    if groups:
        g = groups["images_per_group"]
        out += ["## Groups", "", f"{groups['groups']} groups; images per group min {g['min']}, median "
                f"{g['median']:g}, max {g['max']}; {groups['groups_with_several_classes']} group(s) span "
                "several classes. Folds keep each group in one fold.", ""] + _figure(figures, "groups")
    if summary["attributes"]:
        out += ["## Attributes", ""]
        for name, counts in summary["attributes"].items():
            out += [f"- **{name}**: {_kv(counts)}"]
        out += [""] + _figure(figures, "attributes")
    return out


def render_report(summary: dict, dups: pd.DataFrame, figures: dict[str, str]) -> str:
    out = [f"# EDA: {summary['competition']}", "",
           f"Data: `{summary['data_dir']}` ({summary['layout']} layout): {summary['train_images']} train "
           f"images, {summary['test_images']} test images, {summary['num_classes']} classes.", "",
           "## Flags", ""]
    out += [f"- **{flag}**" for flag in summary["flags"]] or ["None."]
    out += [""] + _classes(summary, figures) + _files(summary, figures) + _problems(summary, dups)
    out += _stats(summary, figures) + _groups_and_attributes(summary, figures)
    out += _crop(summary, figures)
    out += ["## Samples", ""] + _figure(figures, "samples")
    out += ["Every file's measurements: `files.csv`; duplicate sets: `duplicates.csv`; numbers: "
            "`summary.json`.", ""]
    return "\n".join(out)


def terminal_summary(summary: dict, report: Path) -> str:
    train, test, d = summary["train"], summary["test"], summary["duplicates"]
    bad = summary["bad_files"]
    empty = sum(b["status"] == "empty" for b in bad)
    size = summary["image_size"]
    lines = [
        f"EDA {summary['competition']}: {summary['train_images']} train / "
        f"{summary['test_images']} test images, "
        f"{summary['num_classes']} classes" + (f", {summary['groups']['groups']} groups"
                                               if summary["groups"] else ""),
        f"  classes: imbalance {summary['imbalance_ratio']:.2f}:1 (largest '{summary['largest_class']}' "
        f"{summary['class_counts'][summary['largest_class']]}, smallest '{summary['smallest_class']}' "
        f"{summary['class_counts'][summary['smallest_class']]})",
        f"  sizes: train {_kv(train['top_sizes'])} ({train['distinct_sizes']} distinct); "
        f"test {_kv(test['top_sizes'])} ({test['distinct_sizes']} distinct)",
        f"  channels: train {_kv(train['channels'])}, test {_kv(test['channels'])}; "
        f"types: train {_kv(train['content_types'])}, test {_kv(test['content_types'])}",
        f"  bad files: {len(bad) - empty} corrupt/unreadable, {empty} zero-byte",
        f"  duplicates: {d['within_train']} set(s) in train ({d['conflicting_labels']} conflicting), "
        f"{d['within_test']} in test, {d['across']} across train/test",
        f"  RGB mean {summary['channel_stats']['train']['mean']} "
        f"std {summary['channel_stats']['train']['std']}",
        f"  shift: {', '.join(r['property'] for r in summary['shift'] if r['shifted']) or 'none detected'}",
        f"  image size: suggested data.image_size={size['suggested']} (median short side "
        f"{size['median_short_side']}, cap {size['cap']})",
    ]
    lines += [f"  FLAG: {flag}" for flag in summary["flags"]]
    lines.append(f"  report: {report}")
    return "\n".join(lines)
