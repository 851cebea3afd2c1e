"""Where does a trained LSE classifier's localisation go: into its per-position scores, or into Grad-CAM?

For the first ``n`` manipulated images of a generated split with masks (selfsplice.py / synth.py), the
per-image pixel AUC, on each variant's feature grid, of (a) the head's per-position score
s = w.f + b (``train.position_scores``) and (b) the LSE head's Grad-CAM, ReLU(w.f) (up to the positive
factor 1 / (h w)), against the generated mask area-pooled to that grid and thresholded at 0.5. A model
whose (a) is high and (b) low has learned where the region is but shows it below the ReLU. Feature-grid
figures of the network alone, not the app's pixel AUC (no upsampling, no fusion); also the share of
those images whose Grad-CAM is zero everywhere (w.f <= 0 at every position: a flat map). Writes
``results/position_auc_<name>.json``.

    python -m tamperscope_training.position_auc --run runs/X --name X [--split select/twins_val] [--n 60]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import REPO, load_split
from .diagnose import auc
from .model import build
from .train import generated_mask_targets, load_ela, position_scores


def position_auc(ckpt: Path, split: str, n: int, ela_scale: float = 2.0) -> dict:
    """Mean per-image AUC of s and of ReLU(w.f) per variant (module docstring); {variant: {...}}."""
    state = torch.load(ckpt, map_location="cpu")
    run = json.loads((ckpt.parent / "summary.json").read_text())["args"]
    model = build(run["model"], None, frozen=run["frozen"], d=run["d"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    npys, y, _ = load_split(split)
    targets, has = generated_mask_targets([split])
    idx = [i for i in range(len(y)) if y[i] == 1 and bool(has[i])][:n]
    per = {v: {"score": [], "gradcam": []} for v in model.variants}
    zero = {v: [] for v in model.variants}
    for start in range(0, len(idx), 8):
        chunk = idx[start:start + 8]
        with torch.no_grad():
            fcs = model.features(load_ela([npys[i] for i in chunk], ela_scale).float())
            # s = w.f + b with one b per variant: s ranks positions exactly as w.f does
            wf = position_scores(model, fcs, with_bias=False)
        for v in model.variants:
            for k, i in enumerate(chunk):
                t = F.adaptive_avg_pool2d(targets[i:i + 1].float(), wf[v].shape[-2:])[0, 0].numpy() > 0.5
                if 0 < t.sum() < t.size:
                    per[v]["score"].append(auc(t, wf[v][k].numpy()))
                    per[v]["gradcam"].append(auc(t, np.maximum(wf[v][k].numpy(), 0)))
                    zero[v].append(float(wf[v][k].max()) <= 0)
    return {str(v): {**{k: {"mean_auc": round(float(np.mean(a)), 4), "se": round(float(np.std(a) / np.sqrt(len(a))), 4),
                            "images": len(a)} for k, a in d.items()},
                     "gradcam_zero_everywhere_share": round(float(np.mean(zero[v])), 4)} for v, d in per.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="training run folder holding model.pt")
    ap.add_argument("--name", required=True)
    ap.add_argument("--split", default="select/twins_val", help="a generated split with masks (under .cache/)")
    ap.add_argument("--n", type=int, default=60, help="manipulated images scored")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    res = {"run": args.run, "split": args.split, "n": args.n,
           "variants": position_auc(Path(args.run) / "model.pt", args.split, args.n)}
    out = REPO / "training" / "results" / f"position_auc_{args.name}.json"
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
