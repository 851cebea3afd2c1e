"""Train WCBnet (or the plain ResNet-50 baseline) on signed ELA with image-level labels (the paper's weak
supervision; the auxiliary pixel losses ``--aux-dq`` and ``--aux-mask`` are experiments, off by default).

CPU recipe (see training/README.md):
  python -m tamperscope_training.train --model wcb-mobilenetv2 --data casia_train,synth \
      --epochs 5 --seed 0 --out training/runs/wcb-mnv2

For the MobileNetV2 backbone the first ``frozen`` blocks keep their ImageNet weights; their outputs
are computed once per image and cached (fp16, in RAM) so each step only runs the trainable part.
Augmentation: random horizontal / vertical flips (of the ELA tensor for models trained end to end;
of the cached frozen-block features otherwise, an approximation of flipping the input).
Validation: CASIA v1 val after every epoch, reported. The checkpoint kept is the last epoch's
(``--select last``, the default: CASIA image AUC rewards its file-history shortcut, so it never chooses a
model; select.py chooses on table-neutral data). ``--select val`` (best CASIA val AUC of the mean
probability) reproduces the shipped model's recipe, which was run when that was the default.

Device: CUDA when torch sees a GPU (``--device auto``), with mixed precision (bf16 autocast where the GPU
supports it, else fp16 autocast with a gradient scaler); the CPU path is unchanged (float32).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import CACHE, SHARED, ela_codec, git_commit, labels_csv, load_split, metrics, read_groups, read_labels, read_recipe, \
    table_only_auc
from .debias import fit_bias, global_stats
from .model import MODEL_NAMES, build

MNV2_WEIGHTS = os.environ.get("TAMPERSCOPE_MNV2_WEIGHTS", str(SHARED / "models" / "mobilenetv2_imagenet_features.pt"))


def load_ela(npys, scale):
    x = torch.empty((len(npys), 3, 384, 384), dtype=torch.float16)
    for i, n in enumerate(npys):
        x[i] = torch.from_numpy(np.load(n) / scale)
    return x


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees a GPU, else CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no GPU")
    return torch.device(name)


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def autocast(device: torch.device):
    """Mixed precision on CUDA (bf16 where supported, else fp16); a no-op context on CPU."""
    if device.type != "cuda":
        return torch.autocast("cpu", enabled=False)
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


@torch.no_grad()
def compute_stem(model, x16, bs=16):
    """The frozen blocks' outputs for every ELA tensor, stored fp16 on the CPU (computed on the model's
    device, in float32: the cache must not depend on the device's mixed precision)."""
    assert not any(b.training for b in model.backbone.blocks[: model.backbone.frozen])
    dev = model_device(model)
    outs = None
    for i in range(0, len(x16), bs):
        st = model.backbone.stem(x16[i:i + bs].to(dev).float())
        if outs is None:
            outs = [torch.empty((len(x16),) + s.shape[1:], dtype=torch.float16) for s in st]
        for o, s in zip(outs, st):
            o[i:i + bs] = s.half().cpu()
    return outs


def flip(t, fh, fv):
    if fh:
        t = t.flip(-1)
    if fv:
        t = t.flip(-2)
    return t


class Inputs:
    """Either raw ELA tensors (end-to-end models) or cached frozen-stem outputs."""

    def __init__(self, model, x16, cached, key, recalibrate: int = 0, seed: int = 0):
        """Cached: the frozen blocks' outputs, computed in eval mode, stored with the frozen blocks'
        state (their BN statistics, re-estimated on ``recalibrate`` training images when > 0) so that the
        model that trains on the cache is exactly the model that is exported."""
        self.cached = cached
        if cached:
            bb = model.backbone
            f = CACHE / "stem" / f"{key}.pt"
            if f.exists():
                ck = torch.load(f)
                self.x = ck["stem"]
                bb.blocks[: bb.frozen].load_state_dict(ck["frozen_state"])
            else:
                if recalibrate:
                    g = torch.Generator().manual_seed(seed)
                    sub = torch.randperm(len(x16), generator=g)[:recalibrate]
                    dev = model_device(model)
                    bb.recalibrate_frozen_bn(x16[sub[i:i + 16]].to(dev).float() for i in range(0, len(sub), 16))
                self.x = compute_stem(model, x16)
                f.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"stem": self.x, "frozen_state": bb.blocks[: bb.frozen].state_dict()}, f)
        else:
            self.x = x16

    @classmethod
    def per_split(cls, model, splits, scale, state_from: str):
        """Cached frozen-block outputs, one cache file per split, all computed with the frozen state stored
        in ``.cache/stem/<state_from>.pt`` (an earlier run's cache): runs that add a split reuse the
        others' features and export the same frozen blocks."""
        bb = model.backbone
        state_file = CACHE / "stem" / f"{state_from}.pt"
        if not state_file.exists():
            raise SystemExit(f"--frozen-state-from: {state_file} does not exist (run the recipe that makes it)")
        # mmap: only the small frozen state is read, not the cached outputs stored beside it
        bb.blocks[: bb.frozen].load_state_dict(torch.load(state_file, mmap=True)["frozen_state"])
        parts = []
        for split in splits:
            f = CACHE / "stem" / f"{split}@{state_from}.pt"
            if f.exists():
                parts.append(torch.load(f)["stem"])
            else:
                npys, _, _ = load_split(split)
                st = compute_stem(model, load_ela(npys, scale))
                f.parent.mkdir(parents=True, exist_ok=True)
                torch.save({"stem": st, "state_from": state_from}, f)
                parts.append(st)
        self = cls.__new__(cls)
        self.cached = True
        self.x = [torch.cat([p[j] for p in parts]) for j in range(len(parts[0]))]
        return self

    def __len__(self):
        return len(self.x[0]) if self.cached else len(self.x)

    def maps(self) -> list[torch.Tensor]:
        """What the network sees first: the cached frozen-block outputs, or the ELA tensor."""
        return self.x if self.cached else [self.x]

    def get(self, idx, fh=False, fv=False, device=torch.device("cpu")):
        if self.cached:
            return {"stem": [flip(s[idx].to(device).float(), fh, fv) for s in self.x]}
        return {"x": flip(self.x[idx].to(device).float(), fh, fv)}


AUX_SIDE = 96  # weak targets are stored at 384 / 4 and pooled to each variant's feature grid


def square_target(png: Path) -> torch.Tensor:
    """A map as an auxiliary target: grey levels / 255, area-resized to the square 384 x 384 classifier
    input (the ELA's geometry) and on to ``AUX_SIDE`` x ``AUX_SIDE`` float32."""
    from PIL import Image

    with Image.open(png) as im:
        sq = im.convert("L").resize((384, 384), Image.BOX).resize((AUX_SIDE, AUX_SIDE), Image.BOX)
    return torch.from_numpy(np.asarray(sq, np.float32) / 255.0)


def weak_dq_targets(splits: list[str], folder: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Weak pixel targets for the auxiliary loss (issue 19, item 5): for each manipulated training image
    of a ``casia_rq*`` split, the app's combined compression map (``compression_raw.png`` of
    ``tamperscope analyze`` run on the original CASIA train file, same geometry) area-resized to the
    square classifier input and stored at ``AUX_SIDE``; never a ground-truth mask. Images without such a
    map (authentic, other splits, no trace found) get no target. Returns (targets [N, 1, S, S] float16,
    has_target [N] bool), in the order of the splits' labels.csv rows."""
    targets, has = [], []
    for split in splits:
        for path, label, _ in read_labels(labels_csv(split)):
            m = None
            if split.startswith("casia_rq") and label == 1:
                f = folder / path.stem.removeprefix("rq_") / "compression_raw.png"
                if f.exists():
                    m = square_target(f)
            has.append(m is not None)
            targets.append(m if m is not None else torch.zeros(AUX_SIDE, AUX_SIDE))
    return torch.stack(targets).unsqueeze(1).half(), torch.tensor(has)


def generated_mask_targets(splits: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel targets from the masks that this package's generators wrote for their own images (selfsplice.py
    twins, synth.py splices and copy-moves; a ``mask`` column in labels.csv), for ``train --aux-mask``:
    manipulated images get their mask area-resized to the square classifier input and stored at
    ``AUX_SIDE``, authentic images of those splits an all-zero target. CASIA images (``casia_*`` splits
    other than the generated ``casia_pairs*``) never get one: their ground truth stays out of training.
    Returns (targets [N, 1, S, S] float16 in [0, 1], has_target [N] bool), in the order of the splits'
    labels.csv rows."""
    targets, has = [], []
    for split in splits:
        with open(labels_csv(split)) as f:
            rows = list(csv.DictReader(f))
        casia = split.startswith("casia_") and not split.startswith("casia_pairs")  # CASIA's own files
        generated = bool(rows) and "mask" in rows[0] and not casia
        for r in rows:
            m = None
            if generated and int(r["label"]) == 0:
                m = torch.zeros(AUX_SIDE, AUX_SIDE)
            elif generated and r["mask"]:
                m = square_target(labels_csv(split).parent / r["mask"])
            has.append(m is not None)
            targets.append(m if m is not None else torch.zeros(AUX_SIDE, AUX_SIDE))
    return torch.stack(targets).unsqueeze(1).half(), torch.tensor(has)


def position_scores(model, fcs: dict, with_bias: bool = True) -> dict:
    """v -> the per-position dense score s_v [N, h, w] that the LSE head pools (model.pooled_logit); without
    the bias, w.f: the LSE head's Grad-CAM before its ReLU, up to the positive factor 1 / (h w)."""
    out = {}
    for v in model.variants:
        net = model.nets[model.variants.index(v)] if hasattr(model, "nets") else model
        lin = net.heads[str(v)]
        out[v] = torch.einsum("nchw,oc->nohw", fcs[v], lin.weight)[:, 0] + (lin.bias if with_bias else 0)
    return out


def paired_order(groups: list[str], g: torch.Generator) -> torch.Tensor:
    """A random order of the images in which the members of each group stay next to each other."""
    members: dict[str, list[int]] = {}
    for i, grp in enumerate(groups):
        members.setdefault(grp, []).append(i)
    names = list(members)
    return torch.tensor([i for k in torch.randperm(len(names), generator=g).tolist() for i in members[names[k]]])


def logits_of(model, inp):
    z = model(stem=inp["stem"]) if "stem" in inp else model(inp["x"])
    return z


@torch.no_grad()
def predict(model, inputs: Inputs, bs=16):
    model.eval()
    dev = model_device(model)
    out = []
    for i in range(0, len(inputs), bs):
        idx = torch.arange(i, min(i + bs, len(inputs)))
        with autocast(dev):
            z = logits_of(model, inputs.get(idx, device=dev))
        out.append(torch.sigmoid(z.float()).cpu())
    return torch.cat(out).numpy()


def evaluate(model, inputs, y, variants):
    p = predict(model, inputs)
    res = {}
    if not variants:  # the ResNet-50 baseline: one logit, no variants
        res["baseline"] = metrics(p[:, 0], y)
        res["mean"] = res["baseline"]
    else:
        for j, v in enumerate(variants):
            res[f"b{v}"] = metrics(p[:, j], y)
        res["mean"] = metrics(p.mean(1), y)
    return res, p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="wcb-mobilenetv2", choices=MODEL_NAMES)
    ap.add_argument("--data", default="casia_train,synth")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--time-budget-min", type=float, default=0, help="stop training after this many minutes")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--ela-scale", type=float, default=2.0)
    ap.add_argument("--frozen", type=int, default=3, help="MobileNetV2 blocks kept frozen (cached)")
    ap.add_argument("--d", type=int, default=64, help="CBAM channels per block (C = 5 d)")
    ap.add_argument("--bn-recalibrate", type=int, default=400,
                    help="re-estimate the frozen blocks' BN statistics on this many training ELA images (0: ImageNet's)")
    ap.add_argument("--frozen-state-from", default="",
                    help="reuse the frozen blocks' state of this stem cache (.cache/stem/NAME.pt) and cache the "
                         "frozen-block outputs per split")
    ap.add_argument("--init", default="", help="start from this run's model.pt (same --model), e.g. to fine-tune")
    ap.add_argument("--paired", action="store_true",
                    help="keep selfsplice.py's authentic / manipulated twins in the same batch")
    ap.add_argument("--debias-global", action="store_true",
                    help="product of experts with a logistic model of the inputs' global statistics (debias.py), "
                         "so that whole-file cues give little gradient; the exported model is the classifier alone")
    ap.add_argument("--debias-l2", type=float, default=1e-2, help="L2 penalty of the global bias model")
    ap.add_argument("--aux-dq", type=float, default=0.0,
                    help="weight of the auxiliary loss on weak targets from the compression evidence (issue 19, "
                         "item 5; needs --aux-dq-dir); 0: off")
    ap.add_argument("--aux-dq-dir", default=str(CACHE / "weak_dq"),
                    help="`tamperscope analyze` output of the original CASIA train manipulated files")
    ap.add_argument("--aux-mask", type=float, default=0.0,
                    help="weight of an auxiliary loss on the masks of the generated training images (selfsplice.py, "
                         "synth.py; never CASIA's): pixel supervision, a departure from the paper's weak "
                         "supervision; 0: off")
    ap.add_argument("--aux-on", choices=["score", "cam"], default="score",
                    help="what the auxiliary loss supervises: the head's per-position score s = w.f + b (score), or "
                         "w.f alone (cam): for the LSE head Grad-CAM is ReLU(w.f) / (h w), so only w.f > 0 shows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    ap.add_argument("--select", choices=["val", "last"], default="last",
                    help="checkpoint kept: the last epoch (default), or the best CASIA val image AUC (only to "
                         "reproduce the shipped recipe: that figure rewards CASIA's file-history shortcut)")
    ap.add_argument("--val", default="casia_val",
                    help="split scored after each epoch (a report; with --select val also the choice): CASIA val by "
                         "default, or a held-out part of the training data (gpu_bundle.py's bundle_val)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="auto: CUDA with mixed precision when torch sees a GPU, else CPU")
    args = ap.parse_args(argv)

    t_start = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    commit = git_commit()

    device = pick_device(args.device)
    model = build(args.model, MNV2_WEIGHTS, frozen=args.frozen, d=args.d)
    if args.init:
        model.load_state_dict(torch.load(args.init, map_location="cpu")["state_dict"])
    model.to(device)
    # fp16 autocast needs loss scaling; bf16 (and the CPU's float32) does not
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and not torch.cuda.is_bf16_supported())
    # models with frozen ImageNet blocks train on their cached outputs
    cached = getattr(getattr(model, "backbone", None), "frozen", 0) > 0
    variants = list(getattr(model, "variants", []))

    npys, ys, kinds = [], [], []
    counts = {}
    for split in args.data.split(","):
        n, y, k = load_split(split)
        npys += n
        ys.append(y)
        kinds += k
        counts[split] = {"images": len(n), "manipulated": int(y.sum()), "authentic": int(len(y) - y.sum())}
    ytr = torch.from_numpy(np.concatenate(ys))
    # issue 19: the training set should not give its labels away through the files' tables
    images = [r[0] for split in args.data.split(",") for r in read_labels(labels_csv(split))]
    table_auc = round(table_only_auc(images, ytr.numpy(), [g for sp in args.data.split(",") for g in read_groups(sp)]), 4)
    print(f"table-only AUC of the training data: {table_auc}", flush=True)
    vn, yv, _ = load_split(args.val)
    t0 = time.time()
    # The ELA codec is part of the key: frozen-block outputs of another codec's tensors are stale.
    key = f"s{args.ela_scale}_f{args.frozen}_recal{args.bn_recalibrate}_seed{args.seed}_{args.data}@{ela_codec()}"
    if args.frozen_state_from and cached:
        xtr = Inputs.per_split(model, args.data.split(","), args.ela_scale, args.frozen_state_from)
        xva = Inputs.per_split(model, [args.val], args.ela_scale, args.frozen_state_from)
    else:
        xtr = Inputs(model, load_ela(npys, args.ela_scale), cached, f"train_{key}", args.bn_recalibrate, args.seed)
        # val features use the frozen state fixed on the training data (never re-estimated on val)
        vkey = "val" if args.val == "casia_val" else args.val  # "val_…": the name CASIA val's caches already have
        xva = Inputs(model, load_ela(vn, args.ela_scale), cached, f"{vkey}_{key}")
    groups = [grp for split in args.data.split(",") for grp in read_groups(split)]
    assert len(groups) == len(xtr), "labels.csv and the ELA cache disagree"
    bias_logit, bias = None, None
    if args.debias_global:
        bias_logit, bias = fit_bias(global_stats(xtr.maps()), ytr, groups, global_stats(xva.maps()), yv,
                                    args.debias_l2, args.seed)
        print(f"global bias model: {json.dumps(bias)}", flush=True)
    aux_t, aux_has = None, None
    if args.aux_dq > 0:
        if not any(sp.startswith("casia_rq") for sp in args.data.split(",")):
            raise SystemExit("--aux-dq needs a casia_rq* split in --data")
        aux_t, aux_has = weak_dq_targets(args.data.split(","), Path(args.aux_dq_dir))
        assert len(aux_t) == len(xtr), "weak targets and the training images disagree"
        print(f"weak compression targets: {int(aux_has.sum())} of {len(aux_has)} images", flush=True)
    aux_w = args.aux_dq
    if args.aux_mask > 0:
        if aux_t is not None:
            raise SystemExit("--aux-dq and --aux-mask are separate experiments: give one")
        aux_t, aux_has = generated_mask_targets(args.data.split(","))
        assert len(aux_t) == len(xtr), "mask targets and the training images disagree"
        aux_w = args.aux_mask
        print(f"generated-mask targets: {int(aux_has.sum())} of {len(aux_has)} images", flush=True)
    t_prep = time.time() - t0
    print(f"data {counts}, prepared in {t_prep:.0f}s (cached stem: {cached})", flush=True)

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.wd)
    steps_per_epoch = math.ceil(len(xtr) / args.batch)
    total = steps_per_epoch * args.epochs
    budget_s = args.time_budget_min * 60

    def lr_at(frac):  # 5% linear warm-up, then cosine to 0 (over steps, or over the time budget)
        frac = min(1.0, frac)
        return args.lr * (frac / 0.05 if frac < 0.05 else 0.5 * (1 + math.cos(math.pi * (frac - 0.05) / 0.95)))

    g = torch.Generator().manual_seed(args.seed)
    log = []
    best = -1.0
    t_train = time.time()
    stop = False
    step = 0
    for ep in range(args.epochs):
        model.train()
        perm = paired_order(groups, g) if args.paired else torch.randperm(len(xtr), generator=g)
        tl, nb = 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * args.batch:(b + 1) * args.batch]
            fh, fv = torch.rand(2, generator=g) < 0.5
            aux = None
            with autocast(device):
                inp = xtr.get(idx, bool(fh), bool(fv), device)
                if aux_t is None:
                    z = logits_of(model, inp).float()
                else:
                    fcs = model.features(stem=inp["stem"]) if "stem" in inp else model.features(inp["x"])
                    z = torch.cat([model.head(v, fcs[v]) for v in model.variants], dim=1).float()
                    m = aux_has[idx]
                    if bool(m.any()):
                        t = flip(aux_t[idx][m].to(device).float(), bool(fh), bool(fv))
                        s_pos = position_scores(model, {v: fc[m.to(device)] for v, fc in fcs.items()},
                                                with_bias=args.aux_on == "score")
                        aux = sum(F.binary_cross_entropy_with_logits(
                            sv.float(), F.adaptive_avg_pool2d(t, sv.shape[-2:])[:, 0]) for sv in s_pos.values())
            y = ytr[idx].to(device).unsqueeze(1).expand_as(z)
            if bias_logit is not None:  # product of experts: the bias model's logit is added, fixed
                z = z + bias_logit[idx].to(device).unsqueeze(1)
            loss = F.binary_cross_entropy_with_logits(z, y) * z.shape[1]
            if aux is not None:
                loss = loss + aux_w * aux
            frac = (time.time() - t_train) / budget_s if budget_s else step / total
            for gr in opt.param_groups:
                gr["lr"] = lr_at(frac)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step += 1
            tl += loss.item()
            nb += 1
            if b % 20 == 0:
                print(f"ep {ep} step {b}/{steps_per_epoch} loss {tl / nb:.4f} t {time.time() - t_train:.0f}s", flush=True)
            if budget_s and time.time() - t_train > budget_s:
                stop = True
                break
        res, p = evaluate(model, xva, yv, variants)
        ent = {"epoch": ep, "steps": step, "train_loss": tl / max(1, nb), "val": res,
               "time_s": round(time.time() - t_train)}
        log.append(ent)
        print(json.dumps(ent), flush=True)
        if args.select == "last" or res["mean"]["auc"] > best:
            best = max(best, res["mean"]["auc"])
            cfg = model.config() if hasattr(model, "config") else {"backbone": args.model}
            state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            torch.save({"config": cfg, "state_dict": state}, out / "model.pt")
            np.save(out / "val_probs.npy", p)
        if stop:
            break
    summary = {
        "model": args.model, "args": vars(args), "command": " ".join(["python", "-m", "tamperscope_training.train"] + (argv or sys.argv[1:])),
        "commit": commit, "seed": args.seed, "data": counts,
        "data_recipes": {split: r for split in args.data.split(",") if (r := read_recipe(split))},
        "global_bias": bias, "table_only_auc": table_auc,
        "val_data": {args.val: len(vn), "manipulated": int(yv.sum())},
        "prep_s": round(t_prep), "train_s": round(time.time() - t_train), "wall_s": round(time.time() - t_start),
        "best_val_mean_auc": best, "log": log,
        "trainable_params": sum(p.numel() for p in params), "params": sum(p.numel() for p in model.parameters()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("model", "best_val_mean_auc", "wall_s", "train_s")}))


if __name__ == "__main__":
    main()
