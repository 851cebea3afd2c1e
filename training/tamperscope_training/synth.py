"""Synthesise manipulated (and matching authentic) training images from natural photographs.

Everything is deterministic given ``--seed``: image ``i`` uses ``numpy.random.default_rng([seed, i])``.

Manipulations (label 1):
  * splicing: an object-shaped region from another photo pasted into the base photo. Region shapes
    come from COCO semantic-mask objects (connected components of one class; the object is pasted
    with its own pixels) or from BSDS500 human-segmentation segments (region shape applied to a
    patch of another photo), or a random ellipse;
  * copy-move: a region of the base photo copied elsewhere in the same photo.
  The pasted region is resampled (random scale and filter, sometimes a small rotation) and blended
  with a feathered alpha (Gaussian-blurred mask).
Authentic images (label 0) are crops of the same photos given the same random JPEG histories, so
compression alone never gives the label away.

JPEG history (shared by both labels): the base image is optionally pre-compressed (double
compression) at a random quality before the manipulation, the donor region carries its own random
compression, and the final image is saved as JPEG at a random quality (4:2:0 or 4:4:4 chroma).

Images are CASIA-sized: 384x256 (landscape) or 256x384 (portrait), following the photo.
Pixel masks are written to ``masks/``; they are a training signal only under ``train --aux-mask`` (off by default).

Usage: python -m tamperscope_training.synth --out .cache/synth --count 800 --seed 1
"""
from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from .data import write_split

PHOTOS = Path(os.environ.get("TAMPERSCOPE_SHARED", "/work/shared")) / "data" / "photos"
PHOTO_DIRS = ["urban100", "sunhays80", "kodak24", "coco128/images", "wallpapers"]
FILTERS = [Image.BILINEAR, Image.BICUBIC, Image.LANCZOS, Image.BOX]


def list_photos(root: Path = PHOTOS, dirs=PHOTO_DIRS) -> list[Path]:
    out: list[Path] = []
    for d in dirs:
        out += sorted(p for p in (root / d).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return out


def jpeg(img: Image.Image, q: int, subsampling: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(q), subsampling=subsampling)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def sample_history(rng) -> dict:
    """Random JPEG history: optional first compression (before manipulation) and the final one."""
    h = {"q_final": int(rng.integers(70, 99)), "sub": int(rng.choice([0, 2]))}
    h["q_first"] = int(rng.integers(60, 99)) if rng.random() < 0.5 else None
    return h


def random_crop(img: Image.Image, rng, size=None) -> Image.Image:
    """Rescale (random zoom) and crop a photo to CASIA size, portrait or landscape like the photo."""
    w, h = img.size
    if size is None:
        size = (384, 256) if w >= h else (256, 384)
    tw, th = size
    s = max(tw / w, th / h) * float(rng.uniform(1.0, 1.8))
    s = min(s, 1.0) if max(tw / w, th / h) <= 1.0 else s
    nw, nh = max(tw, round(w * s)), max(th, round(h * s))
    img = img.resize((nw, nh), FILTERS[int(rng.integers(len(FILTERS)))])
    x = int(rng.integers(0, nw - tw + 1))
    y = int(rng.integers(0, nh - th + 1))
    return img.crop((x, y, x + tw, y + th))


def ellipse_mask(h: int, w: int, rng) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = h / 2, w / 2
    m = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1.0
    # irregular border: perturb with low-frequency noise
    noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma=max(2, min(h, w) / 8))
    m2 = ((yy - cy) / (h / 2)) ** 2 + ((xx - cx) / (w / 2)) ** 2 <= 1.0 + 3 * noise
    return (m2 if m2.sum() > 0.3 * m.sum() else m).astype(np.uint8)


def bbox(m: np.ndarray):
    ys, xs = np.nonzero(m)
    return ys.min(), ys.max() + 1, xs.min(), xs.max() + 1


def coco_object(rng, photos_root: Path):
    """An object (pixels + mask) cut out of a random COCO photo, or None."""
    imgs = sorted((photos_root / "coco128" / "images").glob("*.jpg"))
    for _ in range(10):
        p = imgs[int(rng.integers(len(imgs)))]
        mp = photos_root / "coco128" / "semantic_masks" / (p.stem + ".png")
        if not mp.exists():
            continue
        lab = np.array(Image.open(mp))
        classes = [c for c in np.unique(lab) if c not in (0, 255)]
        if not classes:
            continue
        c = classes[int(rng.integers(len(classes)))]
        comp, n = ndimage.label(lab == c)
        if n == 0:
            continue
        sizes = ndimage.sum(np.ones_like(comp), comp, range(1, n + 1))
        frac = sizes / lab.size
        ok = [i + 1 for i in range(n) if 0.01 <= frac[i] <= 0.5]
        if not ok:
            continue
        k = ok[int(rng.integers(len(ok)))]
        m = (comp == k).astype(np.uint8)
        y0, y1, x0, x1 = bbox(m)
        img = Image.open(p).convert("RGB")
        return img.crop((x0, y0, x1, y1)), m[y0:y1, x0:x1]
    return None


def bsds_shape(rng, photos_root: Path):
    segs = sorted((photos_root / "bsds500" / "segments").glob("*.png"))
    for _ in range(10):
        lab = np.array(Image.open(segs[int(rng.integers(len(segs)))]))
        labels, counts = np.unique(lab, return_counts=True)
        frac = counts / lab.size
        ok = labels[(frac >= 0.02) & (frac <= 0.5)]
        if len(ok) == 0:
            continue
        m = (lab == ok[int(rng.integers(len(ok)))])
        comp, n = ndimage.label(m)
        if n > 1:  # keep the biggest connected piece
            sizes = ndimage.sum(np.ones_like(comp), comp, range(1, n + 1))
            m = comp == (int(np.argmax(sizes)) + 1)
        m = m.astype(np.uint8)
        y0, y1, x0, x1 = bbox(m)
        return m[y0:y1, x0:x1]
    return None


def cut_region(img: Image.Image, m: np.ndarray, frac: float, rng):
    """A random block of ``img`` shaped like mask ``m``, the mask first shrunk (nearest) to at most ``frac``
    of the image's width and height. Returns the block and the (possibly shrunk) mask."""
    mh, mw = m.shape
    s = min(1.0, frac * img.width / mw, frac * img.height / mh)
    if s < 1.0:
        m = np.asarray(Image.fromarray(m * 255).resize((max(8, int(mw * s)), max(8, int(mh * s))),
                                                       Image.NEAREST)) // 255
        mh, mw = m.shape
    x = int(rng.integers(0, img.width - mw + 1))
    y = int(rng.integers(0, img.height - mh + 1))
    return img.crop((x, y, x + mw, y + mh)), m


def transform_region(patch: Image.Image, mask: np.ndarray, target_area: float, rng):
    """Resample a region (random filter, scale chosen to hit target_area pixels, small rotation)."""
    area = max(1.0, float(mask.sum()))
    s = float(np.sqrt(target_area / area))
    w, h = patch.size
    nw, nh = max(8, round(w * s)), max(8, round(h * s))
    f = FILTERS[int(rng.integers(len(FILTERS)))]
    patch = patch.resize((nw, nh), f)
    mimg = Image.fromarray(mask * 255).resize((nw, nh), Image.BILINEAR)
    if rng.random() < 0.3:
        ang = float(rng.uniform(-20, 20))
        patch = patch.rotate(ang, resample=Image.BICUBIC, expand=True)
        mimg = mimg.rotate(ang, resample=Image.BILINEAR, expand=True)
    return patch, np.asarray(mimg, dtype=np.float32) / 255.0


def paste(base: Image.Image, patch: Image.Image, alpha: np.ndarray, rng, feather: float):
    """Alpha-blend patch into base at a random position; returns image and binary mask."""
    W, H = base.size
    pw, ph = patch.size
    if pw >= W or ph >= H:  # shrink to fit
        s = 0.9 * min(W / pw, H / ph)
        patch = patch.resize((max(4, int(pw * s)), max(4, int(ph * s))), Image.BILINEAR)
        alpha = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).resize(patch.size, Image.BILINEAR),
                           dtype=np.float32) / 255.0
        pw, ph = patch.size
    x = int(rng.integers(0, W - pw + 1))
    y = int(rng.integers(0, H - ph + 1))
    a = np.zeros((H, W), np.float32)
    a[y:y + ph, x:x + pw] = alpha
    if feather > 0:
        a = ndimage.gaussian_filter(a, feather) * (a > 0.01) if rng.random() < 0.5 else ndimage.gaussian_filter(a, feather)
    src = np.zeros((H, W, 3), np.float32)
    src[y:y + ph, x:x + pw] = np.asarray(patch, np.float32)
    b = np.asarray(base, np.float32)
    out = b * (1 - a[..., None]) + src * a[..., None]
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8)), (a >= 0.5).astype(np.uint8)


def make_one(i: int, seed: int, label: int, photos: list[Path], photos_root: Path):
    rng = np.random.default_rng([seed, i])
    base = random_crop(Image.open(photos[int(rng.integers(len(photos)))]).convert("RGB"), rng)
    hist = sample_history(rng)
    if hist["q_first"] is not None:
        base = jpeg(base, hist["q_first"], int(rng.choice([0, 2])))
    W, H = base.size
    mask = np.zeros((H, W), np.uint8)
    kind = "authentic"
    if label == 1:
        target = float(rng.uniform(0.02, 0.25)) * W * H
        feather = float(rng.choice([0.0, 0.7, 1.5, 3.0]))
        r = rng.random()
        if r < 0.35:
            kind = "splice-coco"
            obj = coco_object(rng, photos_root)
            if obj is None:
                r = 0.5
            else:
                patch, m = obj
        if 0.35 <= r < 0.7:
            kind = "splice-bsds"
            m = bsds_shape(rng, photos_root)
            if m is None:
                m = ellipse_mask(int(rng.integers(40, 160)), int(rng.integers(40, 160)), rng)
            donor = random_crop(Image.open(photos[int(rng.integers(len(photos)))]).convert("RGB"), rng,
                                size=(max(m.shape[1], 64), max(m.shape[0], 64)))
            patch = donor.crop((0, 0, m.shape[1], m.shape[0]))
        if r >= 0.7:
            kind = "copy-move"
            if rng.random() < 0.5:
                m = bsds_shape(rng, photos_root)
            else:
                m = None
            if m is None:
                m = ellipse_mask(int(rng.integers(30, 140)), int(rng.integers(30, 140)), rng)
            patch, m = cut_region(base, m, 0.8, rng)
            target = float(m.sum()) * float(rng.uniform(0.7, 1.3)) ** 2
        elif rng.random() < 0.7:  # the donor carries its own compression history
            patch = jpeg(patch, int(rng.integers(50, 99)), int(rng.choice([0, 2])))
        patch, alpha = transform_region(patch, m.astype(np.uint8), target, rng)
        base, mask = paste(base, patch, alpha, rng, feather)
    return base, mask, hist, kind


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, default=800)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--photos", default=str(PHOTOS))
    ap.add_argument("--manipulated-fraction", type=float, default=0.5)
    ap.add_argument("--photo-dirs", default=",".join(PHOTO_DIRS),
                    help="folders under --photos that give the base and donor photos (select.py makes its "
                         "photo set from kodak24,sunhays80 with a seed never used in training)")
    args = ap.parse_args(argv)
    root = Path(args.photos)
    photos = list_photos(root, args.photo_dirs.split(","))
    if not photos:
        raise SystemExit(f"synth: no photos in {args.photo_dirs} under {root}")
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(args.count):
        lrng = np.random.default_rng([args.seed, i, 7])
        label = int(lrng.random() < args.manipulated_fraction)
        img, mask, hist, kind = make_one(i, args.seed, label, photos, root)
        name = f"syn_{args.seed}_{i:05d}"
        img.save(out / "images" / f"{name}.jpg", "JPEG", quality=hist["q_final"], subsampling=hist["sub"])
        if label:
            Image.fromarray(mask * 255).save(out / "masks" / f"{name}.png")
        rows.append({"image": f"images/{name}.jpg", "label": label, "kind": kind,
                     "mask": f"masks/{name}.png" if label else "", "q_first": hist["q_first"] or "", "q_final": hist["q_final"]})
        if (i + 1) % 100 == 0:
            print(f"synth: {i + 1}/{args.count}", flush=True)
    write_split(out, rows, "tamperscope_training.synth", argv, args)


if __name__ == "__main__":
    main()
