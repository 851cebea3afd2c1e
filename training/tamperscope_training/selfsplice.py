"""Paired manipulations of CASIA v1 train's authentic photos, with CASIA's own JPEG histories.

Why: every classifier trained on CASIA as it is learns its file history (the final quantisation table
and the traces of earlier compressions differ between the authentic and the spliced files), a cue that
covers the whole image and so has nothing to localise; and the synthetic images of ``synth.py``, whose
bases are resampled photos, were not learned at all (their loss stayed at chance). Here each authentic
CASIA train photo (decoded as is, so its original JPEG grid stays aligned) gives a *pair*:

* manipulated: a region pasted into it (splice from another authentic CASIA train photo, or a COCO
  object, or copy-move within the photo; BSDS500 / ellipse / object shapes; resampled, sometimes
  rotated, feathered), then saved with the quantisation tables and chroma subsampling of a random
  CASIA train file (either label);
* authentic: the same photo saved with the same tables, untouched.

Both members share the host, the content and the whole file history; they differ only inside the
pasted region (which lost the host's aligned double-compression traces). A classifier can tell them
apart only by local evidence, which is what Grad-CAM can localise. Only authentic train photos are
used (never val); image-level labels by default: the masks are written for held-out scoring, and are a
training signal only under ``train --aux-mask`` (off by default). Deterministic: pair ``i`` uses ``default_rng([seed, i])``.

    python -m tamperscope_training.selfsplice --out ../.cache/casia_pairs --pairs-per-host 2 --seed 5
    python -m tamperscope_training.selfsplice --out ../.cache/casia_pairs_exact --pairs-per-host 2 --seed 7 \
        --exact-fraction 0.6
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin
from scipy import ndimage

from .data import SHARED, read_labels, write_split
from .synth import PHOTOS, bsds_shape, list_photos, coco_object, cut_region, ellipse_mask, jpeg, paste, transform_region


def jpeg_settings(path: Path) -> dict:
    """The quantisation tables and chroma subsampling of a JPEG file (to save another image like it)."""
    im = Image.open(path)
    return {"qtables": im.quantization, "subsampling": JpegImagePlugin.get_sampling(im)}


def region_shape(rng, photos_root: Path) -> np.ndarray:
    m = bsds_shape(rng, photos_root) if rng.random() < 0.6 else None
    if m is None:
        m = ellipse_mask(int(rng.integers(30, 150)), int(rng.integers(30, 150)), rng)
    return m


def fresh_donor(rng, photos_root: Path, size: tuple[int, int]) -> Image.Image:
    """A high-quality photo (q92-95, not COCO) shrunk by 2-4x to about the host's size: content that
    carries no JPEG lattice at CASIA's scale, like a donor cut from an uncompressed source."""
    photos = [p for p in list_photos(photos_root) if "coco128" not in p.parts]
    im = Image.open(photos[int(rng.integers(len(photos)))]).convert("RGB")
    # never below the host's size, so small photos (Kodak's 500 px) shrink less
    factor = min(float(rng.uniform(2.0, 4.0)), max(1.0, min(im.width / size[0], im.height / size[1])))
    return im.resize((round(im.width / factor), round(im.height / factor)), Image.LANCZOS)


def textured_cut(donor: Image.Image, m: np.ndarray, target_area: float, rng, candidates: int = 8):
    """A region of about ``target_area`` pixels cut from ``donor`` at its own scale (no resampling, so its
    texture stays as sharp as the donor's), at the most textured of ``candidates`` random positions:
    CASIA's pasted regions are textured objects, more textured than their surroundings (diagnose's
    ela_energy: texture inside / outside 1.21 over val's splices), while resampled fresh regions are
    smoother than theirs (0.76). Returns the block and its mask (float alpha)."""
    s = float(np.sqrt(target_area / max(1.0, float(m.sum()))))
    s = min(s, 0.9 * donor.width / m.shape[1], 0.9 * donor.height / m.shape[0])
    size = (max(8, round(m.shape[1] * s)), max(8, round(m.shape[0] * s)))
    m = np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    grey = np.asarray(donor.convert("L"), np.float32)
    texture = np.abs(grey - ndimage.uniform_filter(grey, 3))
    best, best_xy = -1.0, (0, 0)
    for _ in range(candidates):
        x = int(rng.integers(0, donor.width - size[0] + 1))
        y = int(rng.integers(0, donor.height - size[1] + 1))
        t = float(texture[y:y + size[1], x:x + size[0]][m].mean()) if m.any() else 0.0
        if t > best:
            best, best_xy = t, (x, y)
    x, y = best_xy
    return donor.crop((x, y, x + size[0], y + size[1])), m.astype(np.float32)


def manipulate(host: Image.Image, donors: list[Path], rng, photos_root: Path, exact_fraction: float = 0.0,
               fresh_fraction: float = 0.0, fresh_textured: bool = False):
    """Paste one region into ``host``; returns image, binary mask and the kind of manipulation.

    With probability ``exact_fraction`` (CASIA-donor splices and copy-moves) the region is pasted pixel
    for pixel, not resampled, as most of CASIA v1's own manipulations are ("NNN" in their file names: 124 of
    the 368 spliced and 272 of the 324 copy-moved files over train + val), so their pasted regions keep
    JPEG blocking on a shifted grid rather than showing resampling.

    With probability ``fresh_fraction`` a splice takes its region from ``fresh_donor`` instead: CASIA's
    spliced regions are "hotter" under ELA at q90 than our CASIA-donor splices (inside/outside mean |ELA|
    1.3-3.5 against 1.0-1.3 on val), as if cut from sources that were never compressed at this scale.
    With ``fresh_textured`` such a region is cut by ``textured_cut``: at the donor's scale, where it is
    most textured, neither resampled nor rotated."""
    W, H = host.size
    target = float(rng.uniform(0.02, 0.2)) * W * H
    feather = float(rng.choice([0.0, 0.7, 1.5, 3.0]))
    # no draw when off, so that pairs made before --exact-fraction existed are reproduced exactly
    exact = exact_fraction > 0 and rng.random() < exact_fraction
    r = rng.random()
    obj = coco_object(rng, photos_root) if r < 0.2 else None
    if obj is not None:
        kind = "splice-coco"
        patch, m = obj
        if rng.random() < 0.5:  # the object carries a JPEG history of its own
            patch = jpeg(patch, int(rng.integers(50, 99)), int(rng.choice([0, 2])))
    elif r < 0.65:
        m = region_shape(rng, photos_root)
        # no draw when off, so that pairs made before --fresh-fraction existed are reproduced exactly
        if fresh_fraction > 0 and rng.random() < fresh_fraction:
            kind = "splice-fresh"
            donor = fresh_donor(rng, photos_root, host.size)
        else:
            kind = "splice-casia"
            donor = Image.open(donors[int(rng.integers(len(donors)))]).convert("RGB")
        if kind == "splice-fresh" and fresh_textured:
            patch, alpha = textured_cut(donor, m, target, rng)
            img, mask = paste(host, patch, alpha, rng, feather)
            return img, mask, "splice-fresh-textured"
        patch, m = cut_region(donor, m, 0.9, rng)
    else:
        kind = "copy-move"
        patch, m = cut_region(host, region_shape(rng, photos_root), 0.7, rng)
        target = float(m.sum()) * float(rng.uniform(0.7, 1.4)) ** 2
    if exact and kind != "splice-coco":
        kind += "-exact"
        alpha = m.astype(np.float32)
        feather = float(rng.choice([0.0, 0.0, 0.7]))
    else:
        patch, alpha = transform_region(patch, m.astype(np.uint8), target, rng)
    img, mask = paste(host, patch, alpha, rng, feather)
    return img, mask, kind


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="train", help="CASIA v1 split whose authentic photos are the hosts")
    ap.add_argument("--for-evaluation", action="store_true",
                    help="allow hosts from another split (val): pairs for scoring only, never for training")
    ap.add_argument("--pairs-per-host", type=int, default=2)
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--exact-fraction", type=float, default=0.0,
                    help="share of regions pasted pixel for pixel (no resampling), like CASIA's 'NNN' files")
    ap.add_argument("--fresh-fraction", type=float, default=0.0,
                    help="share of splices whose donor is a shrunk high-quality photo (see fresh_donor)")
    ap.add_argument("--fresh-textured", action="store_true",
                    help="fresh regions cut at the donor's scale where it is most textured (see textured_cut)")
    ap.add_argument("--max-pairs", type=int, default=0, help="stop after this many pairs (0: all)")
    ap.add_argument("--photos", default=str(PHOTOS))
    args = ap.parse_args(argv)
    if args.split != "train" and not args.for_evaluation:
        raise SystemExit("selfsplice: only the train split may be used to make training pairs")
    rows = read_labels(SHARED / "data" / "casia1" / args.split / "labels.csv")
    hosts = [p for p, label, _ in rows if label == 0]
    # final tables drawn from every train file, independent of the label (also for evaluation pairs)
    histories = [p for p, _, _ in read_labels(SHARED / "data" / "casia1" / "train" / "labels.csv")]
    photos_root = Path(args.photos)
    out = Path(args.out)
    for sub in ("images", "masks"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    table = []
    n_pairs = len(hosts) * args.pairs_per_host
    for i in range(min(n_pairs, args.max_pairs) if args.max_pairs else n_pairs):
        rng = np.random.default_rng([args.seed, i])
        hp = hosts[i % len(hosts)]
        host = Image.open(hp).convert("RGB")
        donors = [p for p in hosts if p != hp]
        img, mask, kind = manipulate(host, donors, rng, photos_root, args.exact_fraction, args.fresh_fraction,
                                     args.fresh_textured)
        hist = histories[int(rng.integers(len(histories)))]
        settings = jpeg_settings(hist)
        for label, im in ((0, host), (1, img)):
            name = f"pair_{args.seed}_{i:05d}_{label}"
            im.save(out / "images" / f"{name}.jpg", "JPEG", **settings)
            if label:
                Image.fromarray(mask * 255).save(out / "masks" / f"{name}.png")
            table.append({"image": f"images/{name}.jpg", "label": label, "kind": kind if label else "authentic",
                          "mask": f"masks/{name}.png" if label else "", "pair": i, "host": hp.name, "history_of": hist.name})
        if (i + 1) % 200 == 0:
            print(f"selfsplice: {i + 1} pairs", flush=True)
    write_split(out, table, "tamperscope_training.selfsplice", argv, args)
    print(f"selfsplice: {len(table)} images ({len(table) // 2} pairs) -> {out}")


if __name__ == "__main__":
    main()
