"""Convert Google's DeepLabV3 (MobileNetV2, PASCAL VOC) TFLite model to ONNX, and measure the result.

    python -m tamperscope_training.convert_deeplab \
        --tflite ../shared/models/deeplabv3_257_mv_gpu.tflite \
        --out models/deeplabv3_257_mv_gpu.onnx --report models/deeplabv3_conversion.json

Conversion: PyPI tflite2onnx 0.4.1, unpatched (it works with onnx 1.23 and tflite 2.18). Its output
is not byte-reproducible: it keeps initializers and value_info in Python sets of objects, so their
order changes from run to run. We canonicalise the ONNX file (initializers and value_info sorted by
name; nodes keep their topological order) and serialise deterministically; the conversion is run
twice and the two files must be identical.

Measurement: the TFLite model (ai-edge-litert interpreter) and the ONNX model (onnxruntime, CPU) on
the first photos (sorted by name) of a folder, each resized to 257x257 with PIL bilinear and scaled
to [-1, 1] as (x - 127.5) / 127.5 (TFLite: NHWC, ONNX: NCHW). Reported: the max absolute logit
difference per image and overall, and the agreement of the per-pixel argmax labels.
The ONNX file is not committed (weights we did not train); the report is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

SIZE = 257
DEFAULT_PHOTOS = "/work/shared/data/photos/coco128/images"


def convert_once(tflite: Path, out: Path) -> bytes:
    """tflite2onnx, then canonical ordering and deterministic serialisation. Returns the bytes."""
    import tflite2onnx

    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)  # "Empty tensor used" noise
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        tflite2onnx.convert(str(tflite), str(raw))
        model = onnx.load(str(raw))
    g = model.graph
    inits = sorted(g.initializer, key=lambda t: t.name)
    infos = sorted(g.value_info, key=lambda v: v.name)
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]
    g.value_info.extend(infos)
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString(deterministic=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return data


def load_photo(path: Path) -> np.ndarray:
    """HWC float32 in [-1, 1], 257x257, PIL bilinear."""
    img = Image.open(path).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    return (np.asarray(img, dtype=np.float32) - 127.5) / 127.5


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def measure(tflite: Path, onnx_path: Path, photos: list[Path]) -> dict:
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    t_in, t_out = interp.get_input_details()[0], interp.get_output_details()[0]
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    o_in, o_out = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    per_image = []
    for p in photos:
        x = load_photo(p)
        interp.set_tensor(t_in["index"], x[None])
        interp.invoke()
        ref = interp.get_tensor(t_out["index"])[0].transpose(2, 0, 1)  # NHWC -> CHW
        got = sess.run([o_out], {o_in: x.transpose(2, 0, 1)[None]})[0][0]
        diff = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        agree = float((ref.argmax(0) == got.argmax(0)).mean())
        labels, counts = np.unique(got.argmax(0), return_counts=True)
        per_image.append({
            "image": p.name,
            "max_abs_logit_diff": float(diff.max()),
            "mean_abs_logit_diff": float(diff.mean()),
            "max_abs_logit": float(np.abs(ref).max()),
            "argmax_agreement_pct": 100.0 * agree,
            "onnx_labels": {int(k): int(v) for k, v in zip(labels, counts)},
        })
    return {
        "tflite_input": {"name": t_in["name"], "shape": t_in["shape"].tolist(), "layout": "NHWC"},
        "tflite_output": {"name": t_out["name"], "shape": t_out["shape"].tolist(), "layout": "NHWC"},
        "per_image": per_image,
        "max_abs_logit_diff": max(r["max_abs_logit_diff"] for r in per_image),
        "argmax_agreement_pct": float(np.mean([r["argmax_agreement_pct"] for r in per_image])),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description="DeepLabV3 TFLite -> ONNX, with a numerical comparison.")
    ap.add_argument("--tflite", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True)
    ap.add_argument("--photos", type=Path, default=Path(DEFAULT_PHOTOS))
    ap.add_argument("--n-photos", type=int, default=5)
    args = ap.parse_args(argv)

    first = convert_once(args.tflite, args.out)
    second = convert_once(args.tflite, args.out)
    sha = hashlib.sha256(first).hexdigest()
    if first != second:
        raise SystemExit(f"conversion is not reproducible: {sha} != {hashlib.sha256(second).hexdigest()}")

    model = onnx.load(str(args.out))
    photos = sorted(p for p in args.photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    photos = photos[: args.n_photos]
    report = {
        "tflite": {"file": args.tflite.name, "sha256": hashlib.sha256(args.tflite.read_bytes()).hexdigest()},
        "onnx": {
            "file": args.out.name,
            "sha256": sha,
            "size_bytes": len(first),
            "reproducible": True,
            "ir_version": model.ir_version,
            "opset": [{"domain": o.domain, "version": o.version} for o in model.opset_import],
            "input": {"name": model.graph.input[0].name, "shape": _dims(model.graph.input[0]),
                      "layout": "NCHW", "preprocess": "RGB, resize to 257x257, (x - 127.5) / 127.5"},
            "output": {"name": model.graph.output[0].name, "shape": _dims(model.graph.output[0]),
                       "layout": "NCHW", "meaning": "logits over 21 PASCAL VOC classes (0 = background)"},
        },
        "converter": "tflite2onnx 0.4.1 (unpatched); initializers and value_info sorted by name afterwards",
        "comparison": {
            "photos": f"first {len(photos)} sorted names of {args.photos}",
            "resize": "PIL bilinear to 257x257",
            "tflite_runtime": "ai_edge_litert.interpreter.Interpreter (default CPU, XNNPACK)",
            "onnx_runtime": "onnxruntime CPUExecutionProvider",
            **measure(args.tflite, args.out, photos),
        },
        "packages": {name: metadata.version(name) for name in
                     ("tflite2onnx", "tflite", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "pillow")},
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    c = report["comparison"]
    print(f"{args.out}  sha256 {sha}  {len(first)} bytes (reproducible)")
    print(f"input {report['onnx']['input']}  output {report['onnx']['output']}")
    for r in c["per_image"]:
        print(f"  {r['image']}: max |diff| {r['max_abs_logit_diff']:.3g}, argmax agree {r['argmax_agreement_pct']:.3f}%")
    print(f"overall max |diff| {c['max_abs_logit_diff']:.3g}, argmax agreement {c['argmax_agreement_pct']:.3f}%")
    return report


if __name__ == "__main__":
    main()
