"""Export WCBnet to ONNX (METHOD.md s.8) and write the Rust-side Grad-CAM parity fixture.

Graph: input ``ela`` [N,3,384,384] (signed ELA / ela_scale), dynamic N; outputs, for each variant v
(2, 3, 4 for WCBnet; 5 for the plain baseline, whose Fc is F_5):
``logit_b{v}`` [N,1], ``features_b{v}`` = Fc_v [N,C,h,w], ``alpha_b{v}`` [N,C] = w / (h w)
(exact Grad-CAM weights of a GAP + dense head).

Usage:
  python -m tamperscope_training.export --ckpt training/runs/wcb-mnv2/model.pt --out models/wcbnet.onnx
  python -m tamperscope_training.export --fixture --model models/wcbnet.onnx --ela-scale 2
"""
from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import numpy as np

from .data import REPO, run_ela
from .gradcam import cam_from_outputs

VARIANTS = (2, 3, 4)


def variants_in(names) -> list[int]:
    """The classifier variants among ONNX output names (2, 3, 4 for WCBnet; 5 for the plain baseline)."""
    return sorted(int(n.removeprefix("logit_b")) for n in names if n.startswith("logit_b"))


def output_names(variants=VARIANTS) -> list[str]:
    return [f"{k}_b{v}" for v in variants for k in ("logit", "features", "alpha")]


OUTPUT_NAMES = output_names()
FIXTURE_DIR = REPO / "tests" / "fixtures" / "gradcam_parity"
FIX_W, FIX_H = 96, 64


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_onnx(model, path, opset: int = 17) -> None:
    import torch

    variants = tuple(model.variants)
    names = output_names(variants)

    class Wrap(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, ela):
            o = self.m.forward_all(ela)
            return tuple(t for v in variants for t in o[v])

    model.eval()
    x = torch.zeros(1, 3, 384, 384)
    dyn = {"ela": {0: "N"}, **{n: {0: "N"} for n in names}}
    torch.onnx.export(Wrap(model), (x,), str(path), input_names=["ela"], output_names=names,
                      dynamic_axes=dyn, opset_version=opset, do_constant_folding=True, dynamo=False)
    import onnx

    onnx.checker.check_model(onnx.load(str(path)))


def fp16_storage(src, dst, min_elems: int = 1024) -> dict:
    """Store ``src``'s float32 weights of at least ``min_elems`` elements as float16, each followed by a
    Cast back to float32, and write ``dst``: the file halves, the arithmetic stays float32 (ONNX Runtime
    folds the Casts into float32 constants when the session is built). Only the weights' rounding to
    float16 changes the outputs; ``fp16_effect`` measures it. Returns counts and sizes."""
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    casts, kept = [], []
    for init in g.initializer:
        w = numpy_helper.to_array(init)
        if init.data_type == onnx.TensorProto.FLOAT and w.size >= min_elems:
            kept.append(numpy_helper.from_array(w.astype(np.float16), init.name + "__fp16"))
            casts.append(helper.make_node("Cast", [init.name + "__fp16"], [init.name], to=onnx.TensorProto.FLOAT,
                                          name=init.name + "__cast"))
        else:
            kept.append(init)
    del g.initializer[:]
    g.initializer.extend(kept)
    nodes = list(g.node)
    del g.node[:]
    g.node.extend(casts + nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))
    return {"weights_fp16": len(casts), "bytes_before": Path(src).stat().st_size, "bytes_after": Path(dst).stat().st_size}


def fp16_effect(fp32, fp16, ela_scale: float) -> dict:
    """Largest differences between two exports' outputs on the parity fixture's inputs: logits and the
    fused CAM (normalised to [0, 1]), as absolute values."""
    xs, _ = fixture_inputs(ela_scale)
    d_logit, d_cam = 0.0, 0.0
    for x in xs:
        a, b = run_onnx(fp32, x), run_onnx(fp16, x)
        variants = variants_in(a)
        d_logit = max(d_logit, max(float(np.abs(a[f"logit_b{v}"] - b[f"logit_b{v}"]).max()) for v in variants))
        for v in variants:
            ca = cam_from_outputs(a[f"features_b{v}"][0], a[f"alpha_b{v}"][0], 384, 384)
            cb = cam_from_outputs(b[f"features_b{v}"][0], b[f"alpha_b{v}"][0], 384, 384)
            d_cam = max(d_cam, float(np.abs(ca - cb).max()))
    return {"max_abs_logit": d_logit, "max_abs_cam": d_cam, "inputs": len(xs)}


def run_onnx(path, x: np.ndarray) -> dict:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"ela": np.ascontiguousarray(x, np.float32)})))


def fixture_inputs(ela_scale: float, seed: int = 1234) -> tuple[list[np.ndarray], list[str]]:
    """Two ELA inputs (already scaled, [1,3,384,384]) from redistributable photos (Kodak crops and
    Debian wallpapers): one authentic crop and one synthesised splice, via the app's own ELA."""
    from PIL import Image

    from .synth import PHOTOS, make_one

    photos = sorted((PHOTOS / "kodak24").glob("*.jpg")) + sorted((PHOTOS / "wallpapers").glob("*.jpg"))
    imgs = []
    kinds = []
    i = 0
    while len(imgs) < 2:
        label = len(imgs)  # first authentic, then manipulated
        img, _mask, hist, kind = make_one(i, seed, label, photos, PHOTOS)
        i += 1
        if kind == "splice-coco":  # COCO pixels are not redistributable here
            continue
        imgs.append((img, hist))
        kinds.append(kind)
    out = []
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        lst = []
        for k, (img, hist) in enumerate(imgs):
            p = td / f"fix{k}.jpg"
            img.save(p, "JPEG", quality=hist["q_final"], subsampling=hist["sub"])
            lst.append(str(p))
        run_ela(lst, td / "ela", td / "list.txt")
        for k in range(len(imgs)):
            out.append((np.load(td / "ela" / f"fix{k}.npy") / ela_scale).astype(np.float32)[None])
    return out, kinds


def write_fixture(model_path, ela_scale: float, out_dir=FIXTURE_DIR) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cases = []
    xs, kinds = fixture_inputs(ela_scale)
    for name, x, kind in zip(("a.npy", "b.npy"), xs, kinds):
        np.save(out_dir / name, x)
        o = run_onnx(model_path, x)
        variants = {}
        for v in VARIANTS:
            z = float(o[f"logit_b{v}"][0, 0])
            cam = cam_from_outputs(o[f"features_b{v}"][0], o[f"alpha_b{v}"][0], FIX_W, FIX_H)
            variants[str(v)] = {"logit": z, "prob": float(1 / (1 + np.exp(-z))),
                                "cam": [round(float(c), 6) for c in cam.ravel()]}
        cases.append({"input": name, "kind": kind, "variants": variants})
    rel = Path(model_path).resolve().relative_to(REPO)
    exp = {"model": str(rel), "model_sha256": sha256(model_path), "width": FIX_W, "height": FIX_H,
           "ela_scale": ela_scale, "layout": "cam is row-major [height][width]; input .npy is float32 [1,3,384,384], already scaled",
           "cases": cases}
    (out_dir / "expected.json").write_text(json.dumps(exp))
    return exp


def evaluate_onnx(model_path, ela_scale: float, split: str = "casia_val", bs: int = 8) -> dict:
    """Image-level metrics of the exported model (per variant and mean probability) on CASIA val."""
    import onnxruntime as ort

    from .data import load_split, metrics

    npys, y, _ = load_split(split)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    variants = variants_in(o.name for o in sess.get_outputs())
    names = [f"logit_b{v}" for v in variants]
    zs = []
    for i in range(0, len(npys), bs):
        x = np.stack([np.load(n) / ela_scale for n in npys[i:i + bs]]).astype(np.float32)
        zs.append(np.concatenate(sess.run(names, {"ela": x}), axis=1))
    p = 1 / (1 + np.exp(-np.concatenate(zs)))
    res = {f"b{v}": metrics(p[:, j], y) for j, v in enumerate(variants)}
    res["mean"] = metrics(p.mean(1), y)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt")
    ap.add_argument("--out", default=str(REPO / "models" / "wcbnet.onnx"))
    ap.add_argument("--fixture", action="store_true")
    ap.add_argument("--model", default=str(REPO / "models" / "wcbnet.onnx"))
    ap.add_argument("--ela-scale", type=float, default=2.0)
    ap.add_argument("--eval-val", action="store_true", help="print the ONNX model's CASIA val metrics")
    ap.add_argument("--fp16-storage", action="store_true",
                    help="store the exported (--ckpt) or given (--model) weights as float16, computed in float32")
    args = ap.parse_args(argv)
    if args.ckpt:
        from .model import load_checkpoint

        model = load_checkpoint(args.ckpt)
        export_onnx(model, args.out)
        print(f"{args.out}: {Path(args.out).stat().st_size} bytes, sha256 {sha256(args.out)}")
    if args.fp16_storage:
        src = Path(args.out if args.ckpt else args.model)
        with tempfile.TemporaryDirectory() as td:
            fp32 = Path(td) / "fp32.onnx"
            fp32.write_bytes(src.read_bytes())
            info = fp16_storage(fp32, src)
            info["effect"] = fp16_effect(fp32, src, args.ela_scale)
        print(json.dumps(info))
        print(f"{src}: sha256 {sha256(src)}")
    if args.fixture:
        exp = write_fixture(args.model, args.ela_scale)
        print(json.dumps({c["input"]: {v: c["variants"][v]["prob"] for v in c["variants"]} for c in exp["cases"]}))
    if args.eval_val:
        print(json.dumps(evaluate_onnx(args.model, args.ela_scale)))


if __name__ == "__main__":
    main()
