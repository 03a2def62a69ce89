"""How often ``data.crop=faces`` finds the face, on real photographs, bare and with a mask drawn on.

The mask competition's photos are phone portraits of people wearing a mask (or not). Without those
photos here, the bench composes scenes from real ones: matplotlib's bundled portrait of Grace
Hopper, scaled (face 8-30% of the scene's short side), turned a little and placed at random on
real backgrounds (scikit-learn's bundled photos), JPEG-encoded at phone size. "masked" paints a
surgical-mask-blue shape over the nose, mouth and chin, as in the competition's mask1..mask5 images.
It reports the share of scenes where a face was found, whether its centre lies on the true face,
and the cost per image (reduced-scale decode + detection).

    python bench/crop_faces.py [--scenes 60]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from _common import RESULTS_DIR, report
from matplotlib import cbook
from PIL import Image
from sklearn.datasets import load_sample_images

from imgclf.data.crop import CropPlan, find_face
from imgclf.data.images import read_image

FACE = (153, 103, 227, 227)  # the face in the portrait (x, y, w, h), as the cascade finds it


def portrait() -> np.ndarray:
    return np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))


def draw_mask(image: np.ndarray) -> np.ndarray:
    x, y, w, h = FACE
    masked = image.copy()
    top, bottom = y + int(0.55 * h), y + int(1.05 * h)
    points = np.array([[x + 0.08 * w, top], [x + 0.92 * w, top], [x + 0.85 * w, bottom],
                       [x + 0.5 * w, bottom + 0.08 * h], [x + 0.15 * w, bottom]], np.int32)
    cv2.fillPoly(masked, [points], (150, 200, 225))
    return masked


def scene(person: np.ndarray, background: np.ndarray, rng: np.random.Generator,
          side: tuple[int, int] = (3000, 4000)) -> tuple[np.ndarray, tuple[float, float, float]]:
    """A phone-size scene and the true face centre and width in it."""
    height, width = side
    canvas = cv2.resize(background, (width, height), interpolation=cv2.INTER_CUBIC)
    share = rng.uniform(0.08, 0.30)
    scale = share * min(height, width) / FACE[2]
    angle = rng.uniform(-12, 12)
    turned = cv2.warpAffine(person, cv2.getRotationMatrix2D((256, 300), angle, 1.0), (512, 600),
                            borderMode=cv2.BORDER_REFLECT)
    small = cv2.resize(turned, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    top = int(rng.integers(0, height - small.shape[0]))
    left = int(rng.integers(0, width - small.shape[1]))
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    cx = left + (FACE[0] + FACE[2] / 2) * scale
    cy = top + (FACE[1] + FACE[3] / 2) * scale
    return canvas, (cx, cy, FACE[2] * scale)


def detect(path: Path, side: int) -> tuple[tuple | None, float, float]:
    """The found face in full-size pixels, the scale of the decode, and seconds spent."""
    start = time.perf_counter()
    image = read_image(path, min_side=CropPlan("faces").decode_side(side, str(path), None))
    with Image.open(path) as full:
        factor = full.size[0] / image.shape[1]
    face = find_face(image)
    seconds = time.perf_counter() - start
    return (None if face is None else tuple(v * factor for v in face)), factor, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--scenes", type=int, default=60)
    p.add_argument("--side", type=int, default=224, help="training side (decides the decode scale)")
    p.add_argument("--work-dir", type=Path, default=RESULTS_DIR / "work" / "crop_faces")
    args = p.parse_args()
    args.work_dir.mkdir(parents=True, exist_ok=True)
    backgrounds = load_sample_images().images
    rows = []
    for variant, person in (("bare face", portrait()), ("masked", draw_mask(portrait()))):
        rng = np.random.default_rng(0)
        found = on_face = 0
        seconds = []
        for i in range(args.scenes):
            image, (cx, cy, width) = scene(person, backgrounds[i % len(backgrounds)], rng)
            path = args.work_dir / f"{variant.replace(' ', '_')}_{i:03d}.jpg"
            Image.fromarray(image).save(path, quality=90)
            face, _, spent = detect(path, args.side)
            seconds.append(spent)
            if face is not None:
                found += 1
                x, y, w, h = face
                on_face += abs(x + w / 2 - cx) < width / 2 and abs(y + h / 2 - cy) < width / 2
        rows.append([variant, args.scenes, found / args.scenes, on_face / args.scenes,
                     1000 * float(np.median(seconds))])
    report("crop_faces", ["faces", "scenes", "found", "found_on_the_face", "ms_per_image"], rows,
           {"side": args.side})


if __name__ == "__main__":
    main()
