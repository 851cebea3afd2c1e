"""Reference fixtures for the Rust tests (METHOD.md sections 3, 5, 6, 7 and the ELA resize of section 1).

    python -m tamperscope_training.fixtures --out tests/fixtures

Every expected value here is computed with numpy / scipy (torch only for the bilinear upsampling of
the CAM), independently of the Rust code. This script *is* the documentation of the reference:
keep it small and obvious. Nothing is rounded.

Conventions: arrays are flat, row-major lists; 2-D arrays come with "width" and "height"; floats are
float64 JSON numbers; masks are 0/1 ints. Random cases use a fixed seed, so re-running gives the same
files.
"""

from __future__ import annotations

import argparse
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy import ndimage, stats

SEED = 20240601
EPS = 1e-6


# ---------------------------------------------------------------------------------------------
# The references
# ---------------------------------------------------------------------------------------------

def edt(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance from each mask pixel to the nearest pixel with mask 0 (0 outside)."""
    assert (mask == 0).any(), "EDT needs at least one background pixel"
    return ndimage.distance_transform_edt(mask).astype(np.float64)


def similarity(mask: np.ndarray, amap: np.ndarray) -> tuple[float, float]:
    """(S_paper, S_normalized): sum(D*A)/sum(M) and sum((D/max D)*A)/sum(M)  (METHOD.md 5)."""
    d = edt(mask)
    area = mask.sum()
    return float((d * amap).sum() / area), float(((d / d.max()) * amap).sum() / area)


def geomean(maps: list[np.ndarray], eps: float = EPS) -> np.ndarray:
    """exp(mean_i log(a_i + eps)) - eps, clipped to [0, 1]  (METHOD.md 3)."""
    logs = np.mean([np.log(a + eps) for a in maps], axis=0)
    return np.clip(np.exp(logs) - eps, 0.0, 1.0)


def refine(prior: np.ndarray, mask: np.ndarray, eps: float = EPS):
    """Bayesian refinement (METHOD.md 6). Returns (r1, r0, H)."""
    a, m = prior, mask.astype(np.float64)
    r1 = float(np.clip((a * m).sum() / a.sum(), eps, 1 - eps))
    r0 = float(np.clip(((1 - a) * m).sum() / (1 - a).sum(), eps, 1 - eps))
    r = np.where(m == 1, r1, 1 - r1)
    rp = np.where(m == 1, r0, 1 - r0)
    num = a * r
    den = a * r + (1 - a) * rp
    h = np.divide(num, den, out=np.zeros_like(num), where=den != 0)
    return r1, r0, h


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney AUC, ties counted 1/2 (average ranks)."""
    ranks = stats.rankdata(scores)  # average ranks for ties
    pos = labels == 1
    p, n = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - p * (p + 1) / 2) / (p * n))


def f1(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> float:
    """F1 of pred = score >= threshold; 0 when there is no true positive."""
    pred = scores >= threshold
    pos = labels == 1
    tp = int((pred & pos).sum())
    if tp == 0:
        return 0.0
    fp, fn = int((pred & ~pos).sum()), int((~pred & pos).sum())
    return 2 * tp / (2 * tp + fp + fn)


def cam(features: np.ndarray, alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """ReLU(sum_k alpha_k F_k), bilinear upsampling (half-pixel centres), min-max to [0, 1]."""
    import torch
    import torch.nn.functional as F

    raw = np.maximum(np.tensordot(alpha, features, axes=(0, 0)), 0.0)  # (fh, fw)
    up = F.interpolate(torch.from_numpy(raw)[None, None], size=(height, width),
                       mode="bilinear", align_corners=False)[0, 0].numpy().astype(np.float64)
    lo, hi = up.min(), up.max()
    if hi == lo:
        return np.zeros_like(up)
    return (up - lo) / (hi - lo)


def area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) matrix: output i covers source [i*src/dst, (i+1)*src/dst); weight = overlap / width."""
    w = np.zeros((dst, src))
    for i in range(dst):
        lo, hi = Fraction(i * src, dst), Fraction((i + 1) * src, dst)
        for j in range(int(lo), min(src, -(-hi.numerator // hi.denominator))):
            overlap = min(hi, j + 1) - max(lo, Fraction(j))
            if overlap > 0:
                w[i, j] = float(overlap / (hi - lo))
    return w


def area_resize(src: np.ndarray, dw: int, dh: int) -> np.ndarray:
    """Box resampling: each output pixel is the overlap-weighted mean of the source pixels it covers."""
    sh, sw = src.shape
    return area_weights(sh, dh) @ src @ area_weights(sw, dw).T


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def flat(a: np.ndarray) -> list:
    return a.ravel().tolist()


def rect(w: int, h: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Mask of shape (h, w) with ones in [x0, x1) x [y0, y1)."""
    m = np.zeros((h, w), dtype=np.int64)
    m[y0:y1, x0:x1] = 1
    return m


def random_mask(rng: np.random.Generator, w: int = 20, h: int = 15, sigma: float = 2.0) -> np.ndarray:
    """Smoothed noise thresholded at its median-ish level; at least one 0 and one 1 pixel."""
    while True:
        noise = ndimage.gaussian_filter(rng.standard_normal((h, w)), sigma)
        m = (noise > 0.2 * noise.std()).astype(np.int64)
        if 0 < m.sum() < m.size:
            return m


def random_map(rng: np.random.Generator, w: int, h: int, sigma: float = 1.5) -> np.ndarray:
    """Smooth map in [0, 1] (min-max normalised smoothed noise)."""
    a = ndimage.gaussian_filter(rng.random((h, w)), sigma)
    return (a - a.min()) / (a.max() - a.min())


def edt_masks(rng: np.random.Generator) -> list[np.ndarray]:
    single = rect(5, 5, 2, 2, 3, 3)
    square = rect(7, 7, 2, 2, 5, 5)
    ell = rect(8, 8, 1, 1, 3, 7) | rect(8, 8, 1, 5, 7, 7)
    border = rect(6, 5, 0, 0, 4, 3)  # touches top and left image borders
    blobs = rect(12, 8, 1, 1, 4, 4) | rect(12, 8, 6, 2, 11, 7)
    return [single, square, ell, border, blobs] + [random_mask(rng) for _ in range(3)]


def edt_cases(rng):
    return {"cases": [{"width": m.shape[1], "height": m.shape[0], "mask": flat(m), "dist": flat(edt(m))}
                      for m in edt_masks(rng)]}


def similarity_cases(rng):
    cases = []
    masks = edt_masks(rng)
    for m in masks:
        h, w = m.shape
        a = random_map(rng, w, h)
        s_paper, s_norm = similarity(m, a)
        cases.append({"width": w, "height": h, "mask": flat(m), "map": flat(a),
                      "s_paper": s_paper, "s_normalized": s_norm})
    # Hand-checkable: 3x3 square in 7x7 with a map of ones -> D sums to 8*1 + 2 = 10, area 9.
    m = rect(7, 7, 2, 2, 5, 5)
    ones = np.ones((7, 7))
    s_paper, s_norm = similarity(m, ones)
    cases.insert(0, {"width": 7, "height": 7, "mask": flat(m), "map": flat(ones),
                     "s_paper": s_paper, "s_normalized": s_norm})
    return {"cases": cases}


def geomean_cases(rng):
    cases = []
    # Hand-checkable: constant maps (1, 1, 1) -> 1; any zero map -> ~0; (0.25, 0.5, 1) ~ 0.5.
    fixed = [
        (2, 2, [np.ones((2, 2))] * 3),
        (3, 1, [np.array([[0.0, 0.5, 1.0]]), np.array([[1.0, 0.5, 1.0]]), np.array([[1.0, 0.5, 1.0]])]),
        (1, 1, [np.array([[0.25]]), np.array([[0.5]]), np.array([[1.0]])]),
    ]
    for w, h, maps in fixed:
        cases.append({"width": w, "height": h, "maps": [flat(a) for a in maps], "fused": flat(geomean(maps))})
    for w, h in [(9, 7), (16, 12)]:
        maps = [random_map(rng, w, h) for _ in range(3)]
        cases.append({"width": w, "height": h, "maps": [flat(a) for a in maps], "fused": flat(geomean(maps))})
    return {"eps": EPS, "cases": cases}


def refine_cases(rng):
    cases = []
    w, h = 10, 8
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((xx - 6.5) / 2.0) ** 2 + ((yy - 4.5) / 1.5) ** 2))  # high A on the right
    prior = 0.05 + 0.9 * blob
    matching = (blob > 0.4).astype(np.int64)
    elsewhere = rect(w, h, 0, 0, 3, 3)  # top-left corner, where A is low
    priors_masks = [(prior, matching), (prior, elsewhere)]
    for _ in range(3):
        a = random_map(rng, 12, 9)
        priors_masks.append((a, random_mask(rng, 12, 9)))
    # Edge: A = 0 and A = 1 pixels (denominator can vanish), mask covering A == 1 exactly.
    edge = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 0.5, 1.0, 0.5]])
    priors_masks.append((edge, (edge == 1.0).astype(np.int64)))
    for a, m in priors_masks:
        r1, r0, hmap = refine(a, m)
        cases.append({"width": a.shape[1], "height": a.shape[0], "prior": flat(a), "mask": flat(m),
                      "r1": r1, "r0": r0, "refined": flat(hmap)})
    return {"eps": EPS, "cases": cases}


def metrics_cases(rng):
    auc_cases, f1_cases = [], []
    fixed = [
        ([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1]),              # perfect -> 1
        ([0.9, 0.8, 0.3, 0.1], [0, 0, 1, 1]),              # inverted -> 0
        ([0.5, 0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1, 1]),      # all equal -> 0.5
        ([0.1, 0.4, 0.4, 0.8, 0.2, 0.4], [0, 1, 0, 1, 0, 0]),  # ties across classes
        ([0.2, 0.6, 0.7, 0.5, 0.9], [1, 0, 1, 0, 1]),
    ]
    for s, l in fixed:
        s, l = np.array(s, dtype=np.float64), np.array(l, dtype=np.int64)
        auc_cases.append({"scores": flat(s), "labels": flat(l), "auc": auc(s, l)})
        f1_cases.append({"scores": flat(s), "labels": flat(l), "threshold": 0.5, "f1": f1(s, l)})
    # F1 edge: no predicted positive -> 0; exactly 0.5 counts as positive.
    for s, l in [([0.1, 0.2, 0.49], [1, 0, 1]), ([0.5, 0.5, 0.2], [1, 0, 0])]:
        s, l = np.array(s, dtype=np.float64), np.array(l, dtype=np.int64)
        f1_cases.append({"scores": flat(s), "labels": flat(l), "threshold": 0.5, "f1": f1(s, l)})
    for n in (200, 300, 500):
        l = (rng.random(n) < 0.35).astype(np.int64)
        s = np.clip(0.4 + 0.25 * l + 0.2 * rng.standard_normal(n), 0, 1)
        s = np.round(s * 20) / 20  # quantised scores: many ties (the rounding is part of the input)
        auc_cases.append({"scores": flat(s), "labels": flat(l), "auc": auc(s, l)})
        f1_cases.append({"scores": flat(s), "labels": flat(l), "threshold": 0.5, "f1": f1(s, l)})
    return {"auc_cases": auc_cases, "f1_cases": f1_cases}


def cam_cases(rng):
    cases = []
    # (channels, fh, fw, width, height): identity size, integer factor, non-integer (5x3 -> 17x11).
    for c, fh, fw, w, h in [(2, 2, 2, 2, 2), (3, 4, 4, 16, 16), (4, 3, 5, 17, 11), (8, 6, 6, 23, 19)]:
        feats = np.abs(rng.standard_normal((c, fh, fw)))  # like ReLU features: non-negative
        alpha = rng.standard_normal(c)
        alpha[0] = -abs(alpha[0])  # at least one negative weight
        alpha[-1] = abs(alpha[-1]) + 0.5  # and a positive one, so the CAM is not all zero
        cases.append({"channels": c, "fh": fh, "fw": fw, "features": flat(feats), "alpha": flat(alpha),
                      "width": w, "height": h, "cam": flat(cam(feats, alpha, w, h))})
    # All negative weights on non-negative features: constant 0 -> all zeros.
    feats = np.abs(rng.standard_normal((2, 3, 3)))
    alpha = np.array([-1.0, -0.5])
    cases.append({"channels": 2, "fh": 3, "fw": 3, "features": flat(feats), "alpha": flat(alpha),
                  "width": 7, "height": 5, "cam": flat(cam(feats, alpha, 7, 5))})
    return {"cases": cases}


def area_resize_cases(rng):
    cases = []
    # Hand-checkable: 4x4 ramp -> 2x2 is the mean of each 2x2 block.
    ramp = np.arange(16, dtype=np.float64).reshape(4, 4)
    sizes = [(4, 4, 2, 2, ramp), (6, 3, 4, 2, None), (7, 5, 3, 2, None), (12, 9, 5, 4, None),
             (16, 16, 4, 4, None), (10, 10, 10, 10, None), (9, 6, 9, 4, None)]
    for sw, sh, dw, dh, src in sizes:
        if src is None:
            src = rng.uniform(-255, 255, (sh, sw))
        cases.append({"sw": sw, "sh": sh, "dw": dw, "dh": dh, "src": flat(src),
                      "dst": flat(area_resize(src, dw, dh))})
    return {"cases": cases}


BUILDERS = {
    "edt.json": edt_cases,
    "similarity.json": similarity_cases,
    "geomean.json": geomean_cases,
    "refine.json": refine_cases,
    "metrics.json": metrics_cases,
    "cam.json": cam_cases,
    "area_resize.json": area_resize_cases,
}


def build_all() -> dict[str, dict]:
    # One generator per file, so adding a case to one file does not change the others.
    return {name: build(np.random.default_rng([SEED, i])) for i, (name, build) in enumerate(BUILDERS.items())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder (e.g. tests/fixtures)")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in build_all().items():
        path = args.out / name
        path.write_text(json.dumps(data) + "\n")
        print(f"{path}: {sum(len(v) for k, v in data.items() if isinstance(v, list))} cases")


if __name__ == "__main__":
    main()
