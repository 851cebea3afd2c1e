"""Do the error levels the classifier sees agree with the weak targets of ``train --aux-dq``?

For every manipulated CASIA train file with a combined compression map (``.cache/weak_dq``, the
``tamperscope analyze`` output of the original files), the per-image pixel AUC of the ELA energy
(sum of |E| over channels, 4 x 4 mean-pooled to the 96 x 96 target grid) against the target
thresholded at 0.5, for the ELA of the re-saved training file (``casia_rq``) and of the original.
Never a ground-truth mask. Writes ``results/aux_dq_ela_agreement.json``.

    python -m tamperscope_training.aux_diagnose
"""
from __future__ import annotations

import json

import numpy as np

from .data import CACHE, REPO, SHARED, ela_cache, load_split, read_labels
from .diagnose import auc
from .train import AUX_SIDE, weak_dq_targets

REPO_RESULTS = REPO / "training" / "results"


def energy(npy) -> np.ndarray:
    e = np.load(npy).astype(np.float32)
    if e.shape[0] != 3:
        e = np.moveaxis(e, -1, 0)
    en = np.abs(e).sum(0)
    return en.reshape(AUX_SIDE, en.shape[0] // AUX_SIDE, AUX_SIDE, en.shape[1] // AUX_SIDE).mean((1, 3)).ravel()


def main() -> None:
    originals = [p for p, label, _ in read_labels(SHARED / "data" / "casia1" / "train" / "labels.csv") if label == 1]
    orig_ela = dict(zip((p.stem for p in originals), ela_cache(originals, "casia_train_manipulated")))
    rq_paths, _, _ = load_split("casia_rq")
    # The same targets `train --aux-dq` uses, in casia_rq's row order.
    targets, has = weak_dq_targets(["casia_rq"], CACHE / "weak_dq")
    per = {"resaved": [], "original": []}
    for rq, t, ok in zip(rq_paths, targets, has.tolist()):
        stem = rq.stem.removeprefix("rq_")
        if not ok or stem not in orig_ela:
            continue
        y = (t.float().numpy() > 0.5).ravel()
        if y.all() or not y.any():
            continue
        per["resaved"].append(auc(y, energy(rq)))
        per["original"].append(auc(y, energy(orig_ela[stem])))
    a, b = np.array(per["resaved"]), np.array(per["original"])
    d = b - a
    out = {
        "images": len(a),
        "ela_energy_vs_weak_target_auc": {
            "resaved_casia_rq": {"mean": round(a.mean(), 4), "median": round(float(np.median(a)), 4),
                                 "se": round(a.std() / np.sqrt(len(a)), 4)},
            "original": {"mean": round(b.mean(), 4), "median": round(float(np.median(b)), 4),
                         "se": round(b.std() / np.sqrt(len(b)), 4)},
            "original_minus_resaved": {"mean": round(d.mean(), 4), "se": round(d.std() / np.sqrt(len(d)), 4)},
        },
    }
    REPO_RESULTS.mkdir(parents=True, exist_ok=True)
    (REPO_RESULTS / "aux_dq_ela_agreement.json").write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
