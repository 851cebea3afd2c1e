"""A global-statistics bias model for product-of-experts training (``train.py --debias-global``).

Why: CASIA v1's labels are predictable from whole-file traces (the re-save of every tampered file, its
JPEG tables), a cue spread over the whole image that Grad-CAM cannot point at. A small logistic regression
that sees only per-channel spatial means and standard deviations of the frozen blocks' outputs (no
location at all) learns that global cue. During training the classifier's logit is added to the bias
model's fixed logit (a product of experts, Clark et al. 2019, "Don't take the easy way out"), so images the
global statistics already explain give little gradient and the classifier is pushed towards what they do
not explain: local evidence. The exported model is the classifier alone.

The bias logits of the training images are cross-fitted (each fold's from a model fitted on the other
folds), so that the bias model's memorisation of the training set does not stand in for the global cue.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .data import REPO, load_split, metrics


def global_stats(feature_maps: list[torch.Tensor], bs: int = 64) -> torch.Tensor:
    """[N, 2 * sum(C)]: the spatial mean and standard deviation of every channel of every map
    ([N, C, H, W] each), which do not change under flips and carry no location."""
    n = len(feature_maps[0])
    out = []
    for i in range(0, n, bs):
        parts = []
        for f in feature_maps:
            x = f[i:i + bs].float().flatten(2)
            parts += [x.mean(-1), x.std(-1)]
        out.append(torch.cat(parts, 1))
    return torch.cat(out)


class LogisticBias:
    """L2-regularised logistic regression on standardised features (full-batch L-BFGS: deterministic)."""

    def __init__(self, l2: float = 1e-2, iters: int = 200):
        self.l2, self.iters = l2, iters

    def fit(self, x: torch.Tensor, y: torch.Tensor) -> "LogisticBias":
        x = x.double()
        self.mu, self.sd = x.mean(0), x.std(0).clamp_min(1e-6)
        xs = (x - self.mu) / self.sd
        self.w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        self.b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([self.w, self.b], max_iter=self.iters, line_search_fn="strong_wolfe")
        yd = y.double()

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ self.w + self.b, yd) \
                + self.l2 * (self.w ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        return self

    @torch.no_grad()
    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return (((x.double() - self.mu) / self.sd) @ self.w + self.b).float()


def cross_fitted_logits(x: torch.Tensor, y: torch.Tensor, groups: list[str], folds: int = 5, seed: int = 0,
                        l2: float = 1e-2) -> torch.Tensor:
    """Each image's bias logit from a model fitted without its fold; members of a group (selfsplice twins)
    share a fold, so a twin never predicts its sibling."""
    names = sorted(set(groups))
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(names, rng.permutation(len(names)) % folds))
    fold = torch.tensor([fold_of[g] for g in groups])
    out = torch.empty(len(y))
    for k in range(folds):
        held = fold == k
        out[held] = LogisticBias(l2).fit(x[~held], y[~held]).logit(x[held])
    return out


def fit_bias(gtr: torch.Tensor, ytr: torch.Tensor, groups: list[str], gva: torch.Tensor, yv, l2: float = 1e-2,
             seed: int = 0) -> tuple[torch.Tensor, dict]:
    """The training images' cross-fitted bias logits, and how much of each label the global statistics alone
    predict (image-level AUC, cross-fitted on train and fitted on train for val): the size of the shortcut."""
    train_logit = cross_fitted_logits(gtr, ytr, groups, seed=seed, l2=l2)
    val_logit = LogisticBias(l2).fit(gtr, ytr).logit(gva)
    return train_logit, {"train_cross_fitted": metrics(torch.sigmoid(train_logit).numpy(), ytr.numpy()),
                         "val": metrics(torch.sigmoid(val_logit).numpy(), np.asarray(yv))}


def main(argv=None):
    """How far CASIA v1's labels follow from global statistics alone: the bias model fitted on CASIA train
    (cross-fitted there) and scored on val, from the shipped recipe's frozen-block caches."""
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--state-from", default="train_s2.0_f3_recal400_seed0_casia_train,synth",
                    help="the frozen-block cache key of the recipe whose features are pooled")
    ap.add_argument("--l2", type=float, default=1e-2)
    ap.add_argument("--out", default=str(REPO / "training" / "results" / "global_statistics_shortcut.json"))
    args = ap.parse_args(argv)
    stats, labels = {}, {}
    for split in ("casia_train", "casia_val"):
        f = REPO / ".cache" / "stem" / f"{split}@{args.state_from}.pt"
        if not f.exists():
            raise SystemExit(f"{f} does not exist: run the shipped recipe (training/README.md) first")
        stats[split] = global_stats(torch.load(f)["stem"])
        labels[split] = torch.from_numpy(load_split(split)[1])
    ytr = labels["casia_train"]
    _, report = fit_bias(stats["casia_train"], ytr, [str(i) for i in range(len(ytr))], stats["casia_val"],
                         labels["casia_val"], args.l2)
    res = {"features": f"spatial mean and sd of each channel of the frozen blocks 1-3 ({stats['casia_val'].shape[1]} "
                       "values per image, no location)", "state_from": args.state_from, "l2": args.l2, **report}
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
