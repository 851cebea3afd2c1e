"""Why do the CAMs not localise? Measurements on an exported classifier (METHOD.md s.7 asks for the
reason when a claim fails). Writes one JSON with:

* ``casia_shortcut``: how well the JPEG file alone predicts the CASIA label, per split: the AUC of the
  DC step of the luminance quantisation table and of bytes per pixel (no model involved);
* ``by_quant_step``: on CASIA val, the model's AUC inside each group of images that share that DC
  step (only groups holding both labels can be scored);
* ``pixel_by_quant_step``: on CASIA val's manipulated images, the pixel AUC of A per kind and DC step;
* ``synth_heldout``: image-level AUC and per-kind pixel AUC of A_2/A_3/A_4/A on synthetic images from
  a seed never used in training (their masks are known), beside the centred-Gaussian and |ELA|
  baselines. A model that learned the manipulations, not a dataset shortcut, scores here too;
* ``pairs_heldout``: the same on selfsplice.py twins from an unused seed, plus how often the
  manipulated twin gets the higher probability (only local evidence can decide that);
* ``ela_energy`` (no model): where the |ELA| energy of CASIA val's manipulated files and of the val-host
  twins lies (mean |ELA| inside the mask over outside it, by kind and DC step) and the pixel AUC of the
  plain |ELA| map box-smoothed at several radii: how much a map could get from the input alone.

    python -m tamperscope_training.diagnose --model ../models/wcbnet.onnx --ela-scale 2 \\
        --out results/diagnosis_wcbnet.json

Masks are read for scoring only.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from .data import CACHE, SHARED, ela_codec, load_split, metrics, run_ela
from .export import variants_in
from .gradcam import cam_from_outputs, fuse, resize_bilinear


def auc(y, s) -> float:
    """Rank AUC (ties averaged); NaN when one class is absent."""
    from scipy.stats import rankdata

    y = np.asarray(y).ravel().astype(bool)
    s = np.asarray(s, np.float64).ravel()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def quant_step(path: Path) -> int:
    q = Image.open(path).quantization
    return int(q[0][0]) if q else 0


def casia_shortcut() -> dict:
    out = {}
    for split in ("train", "val"):
        root = SHARED / "data" / "casia1" / split
        with open(root / "labels.csv") as f:
            rows = list(csv.DictReader(f))
        y, q, bpp = [], [], []
        for r in rows:
            p = root / r["image"]
            with Image.open(p) as im:
                w, h = im.size
            y.append(int(r["label"]))
            q.append(quant_step(p))
            bpp.append(os.path.getsize(p) / (w * h))
        out[split] = {"images": len(y), "auc_quant_dc_step": round(auc(y, q), 4),
                      "auc_bytes_per_pixel": round(auc(y, bpp), 4)}
    return out


def run_model(sess, ela: np.ndarray) -> dict:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {"ela": ela[None].astype(np.float32)})))


def probability(out: dict) -> float:
    return float(np.mean([1 / (1 + np.exp(-out[f"logit_b{v}"][0, 0])) for v in variants_in(out)]))


def val_by_quant_step(sess, ela_scale: float) -> tuple[dict, dict]:
    """One pass over CASIA val, grouped by the DC step of each file's luminance table:
    * image level: the model's AUC inside each group (only groups holding both labels can be scored);
    * pixel level, on the manipulated images with masks: mean per-image pixel AUC of the fused map A, by
      kind and DC step (which compression regimes the maps work in)."""
    npys, y, _ = load_split("casia_val")
    root = SHARED / "data" / "casia1" / "val"
    with open(root / "labels.csv") as f:
        by_stem = {Path(r["image"]).stem: r for r in csv.DictReader(f)}
    p, q, pixel = [], [], {}
    for n in npys:
        r = by_stem[n.stem]
        out = run_model(sess, np.load(n) / ela_scale)
        p.append(probability(out))
        q.append(quant_step(root / r["image"]))
        if r["label"] == "1" and r.get("mask"):
            m = np.asarray(Image.open(root / r["mask"]).convert("L")) > 127
            h, w = m.shape
            a = fuse([cam_from_outputs(out[f"features_b{v}"][0], out[f"alpha_b{v}"][0], w, h)
                      for v in variants_in(out)])
            pixel.setdefault(f"{r['kind']}/dc{q[-1]}", []).append(auc(m, a))
    p, q = np.array(p), np.array(q)
    groups = {}
    for step in sorted(set(q.tolist())):
        m = q == step
        groups[str(step)] = {"authentic": int((y[m] == 0).sum()), "manipulated": int((y[m] == 1).sum()),
                             "model_auc": None if np.isnan(auc(y[m], p[m])) else round(auc(y[m], p[m]), 4),
                             "mean_p": round(float(p[m].mean()), 4)}
    image = {"model_auc_all": metrics(p, y)["auc"], "groups": groups}
    return image, {k: {"images": len(v), "pixel_auc_A": round(float(np.nanmean(v)), 4)}
                   for k, v in sorted(pixel.items())}


def heldout_scores(sess, ela_scale: float, out_dir: Path) -> dict:
    """Image-level AUC and per-kind pixel AUC of A_v / A (and the two baselines) on a generated set with
    masks (``out_dir``: labels.csv, images/, masks/); for selfsplice pairs also how often the manipulated
    twin gets the higher probability."""
    with open(out_dir / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    ela_dir = out_dir / "ela"
    if not ela_dir.exists():
        run_ela([out_dir / r["image"] for r in rows], ela_dir, out_dir / "list.txt")
    ys, ps, pix, twins = [], [], {}, {}
    for r in rows:
        stem = Path(r["image"]).stem
        e = np.load(ela_dir / f"{stem}.npy")
        out = run_model(sess, e / ela_scale)
        ys.append(int(r["label"]))
        ps.append(probability(out))
        if r.get("pair"):
            twins.setdefault(r["pair"], {})[int(r["label"])] = ps[-1]
        if r["label"] != "1":
            continue
        m = np.asarray(Image.open(out_dir / "masks" / f"{stem}.png").convert("L")) > 127
        h, w = m.shape
        variants = variants_in(out)
        cams = [cam_from_outputs(out[f"features_b{v}"][0], out[f"alpha_b{v}"][0], w, h) for v in variants]
        yy, xx = np.mgrid[0:h, 0:w]
        maps = {f"A{v}": c for v, c in zip(variants, cams)}
        maps["A"] = fuse(cams)
        maps["centre_gaussian"] = np.exp(-(((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 4)) ** 2) / 2)
        maps["abs_ela"] = resize_bilinear(np.abs(e).sum(0), h, w)
        for k, v in maps.items():
            pix.setdefault(r["kind"], {}).setdefault(k, []).append(auc(m, v))
    res = {"images": len(ys), "manipulated": int(sum(ys)), "image_auc": round(auc(ys, ps), 4),
           "pixel_auc_by_kind": {kind: {k: round(float(np.nanmean(v)), 4) for k, v in d.items()}
                                 | {"n": len(next(iter(d.values())))} for kind, d in pix.items()}}
    if twins:
        res["pairs_manipulated_higher"] = round(float(np.mean([t[1] > t[0] for t in twins.values()])), 4)
    return res


BOX_RADII = (2, 8, 16)


def ela_energy(items: list[tuple]) -> dict:
    """items: (signed-ELA .npy from the app's binary, mask PNG, kind, DC step of the file[, the image]).
    Per kind and DC group: the median over images of mean |ELA| inside the mask (eroded 6 px) over outside
    it (dilated 6 px), the share of images where inside is hotter, and the mean pixel AUC of |ELA|
    box-smoothed at each radius of BOX_RADII (radius 2 is the app's display and eval baseline). With the
    image: the same ratio for its texture (|grey - its 3x3 box mean|), and the ELA ratio over the texture
    ratio, because ELA is larger on textured content whatever its history: a pasted textured object is
    "hotter" without any compression evidence."""
    from scipy.ndimage import binary_dilation, binary_erosion, uniform_filter

    groups: dict[str, dict[str, list]] = {}
    for npy, mask_path, kind, step, *image in items:
        m = np.asarray(Image.open(mask_path).convert("L")) > 127
        h, w = m.shape
        e = resize_bilinear(np.abs(np.load(npy)).mean(0), h, w)
        inner, outer = binary_erosion(m, iterations=6), ~binary_dilation(m, iterations=6)
        dc = "dc1-2" if step <= 2 else "dc3-6" if step <= 6 else "dc7+"
        ratio = texture = None
        if inner.any() and outer.any():
            ratio = float(e[inner].mean() / max(e[outer].mean(), 1e-6))
            if image and image[0] is not None:
                grey = np.asarray(Image.open(image[0]).convert("L").resize((w, h), Image.BILINEAR), np.float32)
                t = np.abs(grey - uniform_filter(grey, 3))
                texture = float(t[inner].mean() / max(t[outer].mean(), 1e-6))
        for key in (kind, f"{kind}/{dc}"):
            g = groups.setdefault(key, {"ratio": [], "texture": [], "ela_over_texture": []}
                                  | {f"auc_box_r{r}": [] for r in BOX_RADII})
            if ratio is not None:
                g["ratio"].append(ratio)
            if texture is not None:
                g["texture"].append(texture)
                g["ela_over_texture"].append(ratio / max(texture, 1e-6))
            for r in BOX_RADII:
                g[f"auc_box_r{r}"].append(auc(m, uniform_filter(e, 2 * r + 1)))
    out = {}
    for key, g in sorted(groups.items()):
        ratio = np.array(g["ratio"])
        out[key] = {"images": len(g[f"auc_box_r{BOX_RADII[0]}"]),
                    "median_inside_over_outside": round(float(np.median(ratio)), 3) if len(ratio) else None,
                    "share_inside_hotter": round(float(np.mean(ratio > 1)), 3) if len(ratio) else None}
        if g["texture"]:
            rel = np.array(g["ela_over_texture"])
            out[key] |= {"median_texture_inside_over_outside": round(float(np.median(g["texture"])), 3),
                         "median_ela_over_texture": round(float(np.median(rel)), 3),
                         "share_hotter_than_texture": round(float(np.mean(rel > 1)), 3)}
        out[key] |= {k: round(float(np.nanmean(v)), 4) for k, v in g.items() if k.startswith("auc_box")}
    return out


def ela_energy_casia_val() -> dict:
    npys, _, _ = load_split("casia_val")
    root = SHARED / "data" / "casia1" / "val"
    with open(root / "labels.csv") as f:
        by_stem = {Path(r["image"]).stem: r for r in csv.DictReader(f)}
    items = [(n, root / by_stem[n.stem]["mask"], by_stem[n.stem]["kind"], quant_step(root / by_stem[n.stem]["image"]),
              root / by_stem[n.stem]["image"])
             for n in npys if by_stem[n.stem]["label"] == "1" and by_stem[n.stem].get("mask")]
    return ela_energy(items)


def ela_energy_generated(out_dir: Path, ela_dir: Path | None = None) -> dict:
    """On a generated set with masks: one scored by heldout_scores (its ELA cached under out_dir/ela), or a
    training split (``ela_dir``: its ELA cache, .cache/ela/<split>)."""
    ela_dir = ela_dir or out_dir / "ela"
    with open(out_dir / "labels.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "1"]
    return ela_energy([(ela_dir / f"{Path(r['image']).stem}.npy",
                        out_dir / "masks" / f"{Path(r['image']).stem}.png", r["kind"],
                        quant_step(out_dir / r["image"]), out_dir / r["image"]) for r in rows])


def synth_heldout(sess, ela_scale: float, count: int, seed: int) -> dict:
    out_dir = CACHE / f"synth_heldout_{seed}"
    if not (out_dir / "labels.csv").exists():
        subprocess.run([sys.executable, "-m", "tamperscope_training.synth", "--out", str(out_dir), "--count", str(count),
                        "--seed", str(seed)], check=True, stdout=subprocess.DEVNULL,
                       cwd=Path(__file__).resolve().parents[1])
    return {"seed": seed} | heldout_scores(sess, ela_scale, out_dir)


def pairs_heldout(sess, ela_scale: float, count: int, seed: int, split: str = "train") -> dict:
    """selfsplice pairs from a seed never used in training: on train's authentic hosts (new manipulations
    of photos seen in training) or on val's (photos never seen: tells memorised hosts from learned evidence)."""
    out_dir = CACHE / f"pairs_heldout_{split}_{seed}"
    if not (out_dir / "labels.csv").exists():
        subprocess.run([sys.executable, "-m", "tamperscope_training.selfsplice", "--out", str(out_dir),
                        "--pairs-per-host", "1", "--max-pairs", str(count), "--seed", str(seed), "--split", split,
                        "--for-evaluation"], check=True, stdout=subprocess.DEVNULL,
                       cwd=Path(__file__).resolve().parents[1])
    return {"seed": seed, "hosts": f"casia1/{split} authentic"} | heldout_scores(sess, ela_scale, out_dir)


def main(argv=None):
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="the ONNX classifier to diagnose (not needed with --ela-energy-of)")
    ap.add_argument("--ela-energy-of", metavar="SPLIT",
                    help="only the model-free ela_energy section, of CASIA val and of this generated training split "
                         "(e.g. casia_pairs_fresh_all; its ELA cache must exist)")
    ap.add_argument("--ela-scale", type=float, default=2.0)
    ap.add_argument("--synth-count", type=int, default=200)
    ap.add_argument("--synth-seed", type=int, default=77, help="never a training seed (training used 1)")
    ap.add_argument("--pairs-count", type=int, default=150)
    ap.add_argument("--pairs-seed", type=int, default=66, help="never a training seed (training used 5)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.ela_energy_of:
        split = args.ela_energy_of
        res = {"ela_energy": {"casia_val": ela_energy_casia_val(),
                              split: ela_energy_generated(CACHE / split, CACHE / "ela" / f"{split}@{ela_codec()}")}}
        Path(args.out).write_text(json.dumps(res, indent=1))
        print(json.dumps(res, indent=1))
        return
    if not args.model:
        ap.error("--model is required (or --ela-energy-of)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    import hashlib

    image_by_step, pixel_by_step = val_by_quant_step(sess, args.ela_scale)
    res = {
        "model": os.path.basename(args.model),
        "model_sha256": hashlib.sha256(Path(args.model).read_bytes()).hexdigest(),
        "casia_shortcut": casia_shortcut(),
        "by_quant_step": image_by_step,
        "pixel_by_quant_step": pixel_by_step,
        "synth_heldout": synth_heldout(sess, args.ela_scale, args.synth_count, args.synth_seed),
        "pairs_heldout": pairs_heldout(sess, args.ela_scale, args.pairs_count, args.pairs_seed),
        "pairs_val_hosts": pairs_heldout(sess, args.ela_scale, args.pairs_count, args.pairs_seed, "val"),
    }
    res["ela_energy"] = {"casia_val": ela_energy_casia_val(),
                         "pairs_val_hosts": ela_energy_generated(CACHE / f"pairs_heldout_val_{args.pairs_seed}")}
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
