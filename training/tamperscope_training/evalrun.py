"""Measure a training run the way the shipped model is measured, without touching ``models/``.

  python -m tamperscope_training.evalrun --run runs/plain-mnv2 --name plain_mnv2

1. exports the run's checkpoint to ``<run>/model.onnx`` (git-ignored, like the run);
2. writes ``<run>/manifest.toml``: the shipped manifest with its classifier entries replaced by the
   run's variants (``<name>-b<v>``), so the app's own code runs the candidate (the shipped
   segmenters' files are linked beside it, where the app looks them up);
3. ``tamperscope eval`` on CASIA v1 val with DeepLabV3 and Felzenszwalb ->
   ``results/eval_casia_val_<name>.json`` (image level per variant, pixel level of A_v, A and H);
   then ``tamperscope compare-evals`` against the shipped model's ``models/measured.json`` ->
   ``results/compare_shipped_vs_<name>.json`` (paired per-image differences: the figure to choose by);
4. ``diagnose`` (JPEG-history shortcut groups, 200 held-out synthetic images) ->
   ``results/diagnosis_<name>.json``;
5. copies the run's ``summary.json`` (command, seed, commit, per-epoch val) to
   ``results/<name>_run_summary.json``.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from .data import BINARY, REPO, SHARED
from .export import export_onnx, sha256

RESULTS = REPO / "training" / "results"


def candidate_manifest(shipped: str, name: str, onnx: Path, variants, ela_scale: float, source: str) -> str:
    """The shipped manifest's non-classifier entries plus one classifier entry per variant of ``onnx``."""
    head, *blocks = re.split(r"(?m)^\[\[model\]\]$", shipped)
    kept = [b for b in blocks if tomllib.loads("[[model]]" + b)["model"][0]["role"] != "classifier"]
    sha = sha256(onnx)
    entries = [f'''[[model]]
name = "{name}-b{v}"
role = "classifier"
variant = {v}
file = "{onnx.name}"
sha256 = "{sha}"
status = "trained"
licence = "MIT OR Apache-2.0 (trained by this project; candidate, not shipped)"
source = {json.dumps(source)}
input = {{ name = "ela", shape = [1, 3, 384, 384], layout = "NCHW" }}
preprocess = {{ kind = "signed-ela", ela_quality = 90, ela_scale = {ela_scale}, resize = "area" }}
outputs = {{ logit = "logit_b{v}", features = "features_b{v}", alpha = "alpha_b{v}" }}

''' for v in variants]
    return head + "".join(entries) + "".join("[[model]]" + b for b in kept)


def eval_command(dataset: Path, manifest: Path, models: Path, classifiers, segmenters, out: Path) -> list[str]:
    """``tamperscope eval`` of ``dataset`` with the given manifest's classifiers and segmenters."""
    cmd = [str(BINARY), "eval", "--dataset", str(dataset), "--manifest", str(manifest), "--models", str(models),
           "--out", str(out)]
    for s in segmenters:
        cmd += ["--segmenter", s]
    for c in classifiers:
        cmd += ["--classifier", c]
    return cmd


def compare_evals(a: Path, b: Path, out: Path, quiet: bool = False) -> None:
    """``tamperscope compare-evals A B --out OUT`` (paired per-image differences, B minus A)."""
    subprocess.run([str(BINARY), "compare-evals", str(a), str(b), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL if quiet else None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="training run folder (model.pt, summary.json)")
    ap.add_argument("--name", required=True, help="short name for the result files and manifest entries")
    ap.add_argument("--skip-diagnose", action="store_true")
    args = ap.parse_args(argv)
    from .model import load_checkpoint

    run = Path(args.run)
    summary = json.loads((run / "summary.json").read_text())
    model = load_checkpoint(run / "model.pt")
    onnx = run / "model.onnx"
    export_onnx(model, onnx)
    scale = summary["args"]["ela_scale"]
    manifest = run / "manifest.toml"
    shipped = (REPO / "models" / "manifest.toml").read_text()
    manifest.write_text(candidate_manifest(shipped, args.name, onnx, model.variants, scale,
                                           f"candidate: {summary['command']} (commit {summary['commit']})"))
    # the app looks models up beside the manifest: link the shipped segmenters' files there
    for entry in tomllib.loads(shipped)["model"]:
        src, dst = REPO / "models" / entry["file"], run / entry["file"]
        if entry["role"] != "classifier" and src.exists() and not dst.exists():
            dst.symlink_to(src)
    RESULTS.mkdir(parents=True, exist_ok=True)
    subprocess.run(eval_command(SHARED / "data" / "casia1" / "val", manifest, run,
                                [f"{args.name}-b{v}" for v in model.variants], ["deeplabv3", "felzenszwalb"],
                                RESULTS / f"eval_casia_val_{args.name}.json"), check=True)
    compare_evals(REPO / "models" / "measured.json", RESULTS / f"eval_casia_val_{args.name}.json",
                  RESULTS / f"compare_shipped_vs_{args.name}.json")
    if not args.skip_diagnose:
        subprocess.run([sys.executable, "-m", "tamperscope_training.diagnose", "--model", str(onnx), "--ela-scale",
                        str(scale), "--out", str(RESULTS / f"diagnosis_{args.name}.json")], check=True,
                       stdout=subprocess.DEVNULL)
    shutil.copy(run / "summary.json", RESULTS / f"{args.name}_run_summary.json")
    res = json.loads((RESULTS / f"eval_casia_val_{args.name}.json").read_text())
    print(json.dumps({"onnx": str(onnx), "sha256": sha256(onnx), "bytes": onnx.stat().st_size,
                      "image_level": {k: res["image_level"][k] for k in ("auc", "f1")},
                      "pixel_auc": {k: round(v["auc"], 4) for k, v in res["pixel_level"].items()}}, indent=1))


if __name__ == "__main__":
    main()
