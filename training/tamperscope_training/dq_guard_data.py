"""Generated JPEGs that set the A-DJPG image-level rule (CompressionParams::adjpg_min_gain_per_block).

Writes two folders under OUT:
  single/  photos from ../shared/data/photos with no JPEG history left (scaled by 4/7, which puts their
           old 8x8 lattice at no period of the new grid) saved once at q50..98: 10 photos x 8 qualities;
  double/  the same kind of photos saved at q1, an elliptical region from another photo pasted, saved at
           q2: 10 photos x 6 (q1, q2) pairs, with the masks.
Then, given the `tamperscope analyze` output folders of both (run with the rule disabled,
`--dq-min-gain 0`), prints the distribution of S = sum of the gains of the frequencies that pass the
log(#blocks) guard, per block (the statistic the rule thresholds).

  python -m tamperscope_training.dq_guard_data make --out /tmp/dqguard
  tamperscope analyze /tmp/dqguard/single --out /tmp/dqguard/single_out --segmenter felzenszwalb --dq-min-gain 0
  tamperscope analyze /tmp/dqguard/double --out /tmp/dqguard/double_out --segmenter felzenszwalb --dq-min-gain 0
  python -m tamperscope_training.dq_guard_data stats /tmp/dqguard/single_out /tmp/dqguard/double_out
"""
import argparse
import glob
import io
import json
import math
import os
import random
from pathlib import Path

from PIL import Image, ImageDraw

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def no_history(path: str) -> Image.Image:
    im = Image.open(path).convert("RGB")
    w, h = im.size
    im = im.resize((int(w * 4 / 7), int(h * 4 / 7)), Image.LANCZOS)
    return im.crop((5, 3, min(im.size[0], 517), min(im.size[1], 387)))


def jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def make(out: Path, shared: Path) -> None:
    photos = shared / "data" / "photos"
    singles = sorted(glob.glob(str(photos / "wallpapers" / "*.jpg")))[:4] + sorted(
        glob.glob(str(photos / "urban100" / "*")))[:3] + sorted(glob.glob(str(photos / "kodak24" / "*")))[:3]
    (out / "single").mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(singles):
        im = no_history(s)
        for q in [50, 60, 70, 80, 85, 90, 95, 98]:
            im.save(out / "single" / f"s{i:02d}_q{q}.jpg", quality=q)
    doubles = sorted(glob.glob(str(photos / "wallpapers" / "*.jpg")))[4:10] + sorted(
        glob.glob(str(photos / "urban100" / "*")))[3:7]
    (out / "double").mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for i, s in enumerate(doubles):
        im = no_history(s)
        donor = Image.open(doubles[(i + 1) % len(doubles)]).convert("RGB")
        donor = donor.resize((int(donor.size[0] * 0.61), int(donor.size[1] * 0.61)), Image.LANCZOS)
        donor = donor.resize(im.size, Image.LANCZOS) if donor.size[0] < im.size[0] or donor.size[1] < im.size[1] \
            else donor.crop((7, 3, 7 + im.size[0], 3 + im.size[1]))
        for q1, q2 in [(60, 85), (70, 90), (80, 95), (90, 80), (75, 75), (85, 95)]:
            first = jpeg(im, q1)
            w, h = first.size
            x0, y0 = rng.randint(20, w // 2), rng.randint(20, h // 2)
            rw, rh = rng.randint(80, 160), rng.randint(60, 120)
            mask = Image.new("L", first.size, 0)
            ImageDraw.Draw(mask).ellipse((x0, y0, x0 + rw, y0 + rh), fill=255)
            forged = first.copy()
            forged.paste(donor, (0, 0), mask)
            forged.save(out / "double" / f"d{i:02d}_{q1}_{q2}.jpg", quality=q2)
            mask.save(out / "double" / f"d{i:02d}_{q1}_{q2}_mask.png")


def stats(folders: list[str]) -> None:
    for d in folders:
        vals = []
        for f in sorted(glob.glob(os.path.join(d, "*", "analysis.json"))):
            rec = json.load(open(f))
            if not rec["input"]["file_name"].lower().endswith(".jpg"):
                continue  # the masks beside the forgeries
            c = rec["compression"]
            n = math.exp(c["guard_nats"])
            cand = [x for x in c["adjpg_fits"] if x["q2"] % x["q1"] != 0 and x["gain"] > c["guard_nats"]]
            vals.append(sum(x["gain"] for x in cand) / n)
        vals.sort()
        q = lambda p: vals[min(len(vals) - 1, int(p * len(vals)))]  # noqa: E731
        print(f"{d}: {len(vals)} files, S per block q10 {q(.1):.3f} median {q(.5):.3f} q90 {q(.9):.3f} "
              f"max {vals[-1]:.3f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--out", required=True)
    m.add_argument("--shared", default=str(SHARED))
    s = sub.add_parser("stats")
    s.add_argument("folders", nargs="+")
    a = ap.parse_args(argv)
    if a.cmd == "make":
        make(Path(a.out), Path(a.shared))
    else:
        stats(a.folders)


if __name__ == "__main__":
    main()
