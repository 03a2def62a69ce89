"""Decode + resize of large phone-size JPEGs: time per image and peak RSS, before and after.

"before" is the decode the pipeline used until reduced-scale decoding: ``cv2.imread`` of the full
6000x4000 image, then ``cv2.resize`` (INTER_AREA). "after" is ``imgclf.data.images.read_resized``
(Pillow, EXIF orientation, JPEG DCT-domain reduction to the smallest scale that still covers the
target side, then the same resize). Each side runs in its own process, so its peak RSS is its own;
``decode_rss_mib`` is that peak less the process's RSS after its imports (what decoding adds).
The photos are a real portrait (matplotlib's bundled Grace Hopper) scaled up with added noise, so
the JPEG carries texture as a camera's does.

    python bench/decode_big.py [--images 12] [--side 224]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from _common import RESULTS_DIR, report
from matplotlib import cbook
from PIL import Image

WIDTH, HEIGHT = 6000, 4000


def make_photos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    source = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    portrait = np.asarray(Image.open(source).convert("RGB"))
    files = [folder / f"IMG_{i:04d}.JPG" for i in range(n)]
    if all(f.is_file() for f in files):
        return files
    rng = np.random.default_rng(0)
    base = cv2.resize(portrait, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    for i, path in enumerate(files):
        noisy = np.clip(base.astype(np.int16) + rng.integers(-12, 13, base.shape, dtype=np.int16), 0, 255)
        Image.fromarray(np.roll(noisy.astype(np.uint8), 97 * i, axis=1)).save(path, quality=92)
    return files


def before(path: Path, side: int) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def measure(mode: str, folder: Path, side: int) -> dict:
    """Runs in a child process: decode every photo once, sequentially, on one thread."""
    cv2.setNumThreads(1)
    from imgclf.data.images import read_resized

    decode = before if mode == "before" else read_resized
    files = sorted(folder.glob("*.JPG"))
    baseline = _status_mib("VmRSS:")
    start = time.perf_counter()
    for path in files:
        assert decode(path, side).shape == (side, side, 3)
    seconds = time.perf_counter() - start
    return {"ms_per_image": 1000 * seconds / len(files),
            "peak_rss_mib": _status_mib("VmHWM:"), "decode_rss_mib": _status_mib("VmHWM:") - baseline}


def _status_mib(field: str) -> float:
    """A memory figure of this process: VmRSS now, or VmHWM, its high-water mark (it starts afresh
    at exec; ru_maxrss would carry the parent's peak over)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=12)
    p.add_argument("--side", type=int, default=224)
    p.add_argument("--work-dir", type=Path, default=RESULTS_DIR / "work" / "big_jpegs")
    p.add_argument("--child", choices=["before", "after"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.work_dir, args.side)))
        return
    make_photos(args.work_dir, args.images)
    results = {}
    for mode in ("before", "after"):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--side", str(args.side),
                              "--work-dir", str(args.work_dir)], capture_output=True, text=True, check=True)
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    rows = [[mode, f"{WIDTH}x{HEIGHT}", args.side, args.images, r["ms_per_image"], r["peak_rss_mib"],
             r["decode_rss_mib"]] for mode, r in results.items()]
    rows.append(["ratio before/after", "", "", "",
                 *(results["before"][k] / results["after"][k]
                   for k in ("ms_per_image", "peak_rss_mib", "decode_rss_mib"))])
    report("decode_big", ["decode", "photo", "side", "images", "ms_per_image", "peak_rss_mib",
                          "decode_rss_mib"], rows)


if __name__ == "__main__":
    main()
