"""Stand-in ONNX models with the Segment Anything and PSPNet interfaces (METHOD.md sections 4, 8).

    python -m tamperscope_training.standin_sam --out-dir models

Writes, deterministically (byte-identical on re-run), under models/test/:
- standin_sam_encoder.onnx: the SAM image-encoder interface. Input `image` float32 [1,3,1024,1024]
  (RGB resized longest side -> 1024, normalised with SAM's pixel mean/std, padded bottom/right);
  output `image_embeddings` float32 [1,256,64,64] = 1x1 Conv(AveragePool16(image)): cheap, but the
  shape the decoder interface requires.
- standin_sam_decoder.onnx: the interface of the official SAM ONNX export
  (segment_anything/utils/onnx.py, scripts/export_onnx_model.py, without --return-single-mask),
  which MobileSAM's export shares. Inputs `image_embeddings` [1,256,64,64], `point_coords` [N,K,2]
  (x, y in the 1024-resized frame), `point_labels` [N,K], `mask_input` [N,1,256,256],
  `has_mask_input` [N], `orig_im_size` [2] (h, w), all float32. Outputs `masks` [N,4,H,W] (logits at
  orig_im_size, threshold 0), `iou_predictions` [N,4], `low_res_masks` [N,4,256,256]. Channel 0 is
  the single-mask output, channels 1..3 the multimask outputs that automatic mask generation uses.
  The embeddings, labels and mask inputs are consumed as 0 * sum(.). For prompt n, with its first
  point (px, py) and, at a pixel centre, (X, Y) = ((x + 0.5) s, (y + 0.5) s), s = 1024 / max(h, w):
    point inside RECT (x0 <= px < x1, y0 <= py < y1): d = min(X - x0, x1 - X, Y - y0, y1 - Y)
    else (a disc around the point):                    d = DISC_RADIUS - |(X, Y) - (px, py)|
    masks[n, c] = GAIN[c] * d;  iou_predictions[n] = IOU_RECT or IOU_DISC
  GAIN and IOU are chosen so that channel 1 passes every filter, channel 2 (same mask, flat logits)
  fails the stability score and channel 3 (same mask, low IoU) fails the predicted-IoU filter.
- standin_pspnet.onnx: the semantic-segmenter interface of the PSPNet manifest entry, input `input`
  float32 [1,3,473,473], output `logits` [1,150,60,60] (ADE20K classes, 1/8 resolution) whose argmax
  ignores the input: PSP_PATTERN below on the 60x60 grid (rows/cols half-open), class 0 elsewhere.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from .standin import _init, _model, build_rect_segmenter, rect_labels

SAM_SIZE = 1024
EMBED = 256
EMBED_HW = 64
# The fixed rectangle, in the 1024-resized frame: x0, y0, x1, y1 (half-open).
RECT = (256.0, 320.0, 640.0, 704.0)
DISC_RADIUS = 96.0
GAIN = (8.0, 8.0, 0.01, 8.0)
IOU_RECT = (0.97, 0.97, 0.97, 0.5)
IOU_DISC = (0.92, 0.92, 0.92, 0.5)

PSP_SIZE = 473
PSP_OUT = 60
PSP_CLASSES = 150
# class -> (row_start, row_end, col_start, col_end) on the 60x60 logit grid.
PSP_PATTERN = {12: (15, 45, 20, 40), 2: (0, 10, 0, 60)}

# SAM's pixel normalisation (segment_anything/modeling/sam.py).
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def _f32(name: str, value: float) -> TensorProto:
    """A float32 scalar (shape []); `_init` would make it [1]."""
    return numpy_helper.from_array(np.array(value, dtype=np.float32), name)


def _i64(name: str, values) -> TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def build_encoder() -> bytes:
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((EMBED, 3, 1, 1)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(EMBED) * 0.01).astype(np.float32)
    k = SAM_SIZE // EMBED_HW
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[k, k], strides=[k, k]),
        helper.make_node("Conv", ["pooled", "proj_w", "proj_b"], ["image_embeddings"], kernel_shape=[1, 1]),
    ]
    graph = helper.make_graph(
        nodes, "standin_sam_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SAM_SIZE, SAM_SIZE])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, EMBED, EMBED_HW, EMBED_HW])],
        initializer=[_init("proj_w", w), _init("proj_b", b)])
    return _model(graph)


def _masks(nodes: list, prefix: str, xs: str, ys: str, px: str, py: str, inside: str, out: str) -> None:
    """out[n, c, y, x] = GAIN[c] * (rect distance if inside[n] else disc distance)."""
    p = prefix
    nodes += [
        helper.make_node("Sub", [xs, "rx0"], [f"{p}dx0"]),
        helper.make_node("Sub", ["rx1", xs], [f"{p}dx1"]),
        helper.make_node("Sub", [ys, "ry0"], [f"{p}dy0"]),
        helper.make_node("Sub", ["ry1", ys], [f"{p}dy1"]),
        helper.make_node("Min", [f"{p}dx0", f"{p}dx1", f"{p}dy0", f"{p}dy1"], [f"{p}rect_d"]),
        helper.make_node("Sub", [xs, px], [f"{p}ex"]),
        helper.make_node("Sub", [ys, py], [f"{p}ey"]),
        helper.make_node("Mul", [f"{p}ex", f"{p}ex"], [f"{p}ex2"]),
        helper.make_node("Mul", [f"{p}ey", f"{p}ey"], [f"{p}ey2"]),
        helper.make_node("Add", [f"{p}ex2", f"{p}ey2"], [f"{p}r2"]),
        helper.make_node("Sqrt", [f"{p}r2"], [f"{p}r"]),
        helper.make_node("Sub", ["radius", f"{p}r"], [f"{p}disc_d"]),
        helper.make_node("Where", [inside, f"{p}rect_d", f"{p}disc_d"], [f"{p}d"]),
        helper.make_node("Mul", [f"{p}d", "gain"], [f"{p}masks_raw"]),
        helper.make_node("Add", [f"{p}masks_raw", "consumed"], [out]),
    ]


def build_decoder() -> bytes:
    f = np.float32
    inits = [
        _f32("rx0", RECT[0]), _f32("ry0", RECT[1]),
        _f32("rx1", RECT[2]), _f32("ry1", RECT[3]),
        _f32("radius", DISC_RADIUS),
        _init("gain", np.array(GAIN, f).reshape(1, 4, 1, 1)),
        _init("iou_rect", np.array(IOU_RECT, f).reshape(1, 4)),
        _init("iou_disc", np.array(IOU_DISC, f).reshape(1, 4)),
        _f32("zero", 0.0), _f32("one", 1.0), _f32("half", 0.5),
        _f32("side", float(SAM_SIZE)),
        _f32("low_scale", SAM_SIZE / 256.0),
        _f32("low_len", 256.0),
        _i64("idx0", 0), _i64("idx1", 1), _i64("first", [0]),
        _i64("shape_n1", [-1, 1, 1, 1]), _i64("shape_row", [1, 1, 1, -1]), _i64("shape_col", [1, 1, -1, 1]),
        _i64("shape_n1_2", [-1, 1]),
    ]
    nodes = [
        # Everything else the interface passes in is consumed as 0 * sum(.) (kept in the graph).
        helper.make_node("ReduceSum", ["image_embeddings"], ["emb_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["point_labels"], ["lab_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["mask_input"], ["mi_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["has_mask_input"], ["hm_sum"], keepdims=0),
        helper.make_node("Sum", ["emb_sum", "lab_sum", "mi_sum", "hm_sum"], ["all_sum"]),
        helper.make_node("Mul", ["all_sum", "zero"], ["consumed"]),
        # First point of each prompt.
        helper.make_node("Gather", ["point_coords", "first"], ["p0"], axis=1),  # [N,1,2]
        helper.make_node("Gather", ["p0", "idx0"], ["px_n1"], axis=2),  # [N,1]
        helper.make_node("Gather", ["p0", "idx1"], ["py_n1"], axis=2),
        helper.make_node("Reshape", ["px_n1", "shape_n1"], ["px"]),  # [N,1,1,1]
        helper.make_node("Reshape", ["py_n1", "shape_n1"], ["py"]),
        helper.make_node("GreaterOrEqual", ["px", "rx0"], ["in_a"]),
        helper.make_node("Less", ["px", "rx1"], ["in_b"]),
        helper.make_node("GreaterOrEqual", ["py", "ry0"], ["in_c"]),
        helper.make_node("Less", ["py", "ry1"], ["in_d"]),
        helper.make_node("And", ["in_a", "in_b"], ["in_ab"]),
        helper.make_node("And", ["in_c", "in_d"], ["in_cd"]),
        helper.make_node("And", ["in_ab", "in_cd"], ["inside"]),  # [N,1,1,1]
        # Pixel centres of the output grid in the 1024 frame.
        helper.make_node("Gather", ["orig_im_size", "idx0"], ["h"]),
        helper.make_node("Gather", ["orig_im_size", "idx1"], ["w"]),
        helper.make_node("Max", ["h", "w"], ["long_side"]),
        helper.make_node("Div", ["side", "long_side"], ["scale"]),
        helper.make_node("Range", ["zero", "w", "one"], ["xr"]),
        helper.make_node("Range", ["zero", "h", "one"], ["yr"]),
        helper.make_node("Add", ["xr", "half"], ["xc"]),
        helper.make_node("Add", ["yr", "half"], ["yc"]),
        helper.make_node("Mul", ["xc", "scale"], ["xs_flat"]),
        helper.make_node("Mul", ["yc", "scale"], ["ys_flat"]),
        helper.make_node("Reshape", ["xs_flat", "shape_row"], ["xs"]),  # [1,1,1,W]
        helper.make_node("Reshape", ["ys_flat", "shape_col"], ["ys"]),  # [1,1,H,1]
        # The 256x256 low-resolution grid covers the whole 1024 frame.
        helper.make_node("Range", ["zero", "low_len", "one"], ["lr"]),
        helper.make_node("Add", ["lr", "half"], ["lc"]),
        helper.make_node("Mul", ["lc", "low_scale"], ["l_flat"]),
        helper.make_node("Reshape", ["l_flat", "shape_row"], ["lxs"]),
        helper.make_node("Reshape", ["l_flat", "shape_col"], ["lys"]),
    ]
    _masks(nodes, "hi_", "xs", "ys", "px", "py", "inside", "masks")
    _masks(nodes, "lo_", "lxs", "lys", "px", "py", "inside", "low_res_masks")
    nodes += [
        helper.make_node("Reshape", ["inside", "shape_n1_2"], ["inside_n1"]),
        helper.make_node("Where", ["inside_n1", "iou_rect", "iou_disc"], ["iou_raw"]),
        helper.make_node("Add", ["iou_raw", "consumed"], ["iou_predictions"]),
    ]
    fl = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes, "standin_sam_decoder",
        [
            helper.make_tensor_value_info("image_embeddings", fl, [1, EMBED, EMBED_HW, EMBED_HW]),
            helper.make_tensor_value_info("point_coords", fl, ["N", "K", 2]),
            helper.make_tensor_value_info("point_labels", fl, ["N", "K"]),
            helper.make_tensor_value_info("mask_input", fl, ["N", 1, 256, 256]),
            helper.make_tensor_value_info("has_mask_input", fl, ["N"]),
            helper.make_tensor_value_info("orig_im_size", fl, [2]),
        ],
        [
            helper.make_tensor_value_info("masks", fl, ["N", 4, "H", "W"]),
            helper.make_tensor_value_info("iou_predictions", fl, ["N", 4]),
            helper.make_tensor_value_info("low_res_masks", fl, ["N", 4, 256, 256]),
        ],
        initializer=inits)
    return _model(graph)


def psp_pattern() -> np.ndarray:
    return rect_labels(PSP_PATTERN, PSP_OUT)


def build_pspnet() -> bytes:
    return build_rect_segmenter("standin_pspnet", PSP_PATTERN, PSP_CLASSES, PSP_SIZE, PSP_OUT)


def build_all() -> dict[str, bytes]:
    return {
        "test/standin_sam_encoder.onnx": build_encoder(),
        "test/standin_sam_decoder.onnx": build_decoder(),
        "test/standin_pspnet.onnx": build_pspnet(),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write the SAM and PSPNet stand-in ONNX models.")
    ap.add_argument("--out-dir", type=Path, required=True, help="models folder (e.g. models)")
    args = ap.parse_args(argv)
    for rel, data in build_all().items():
        path = args.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path}  sha256 {hashlib.sha256(data).hexdigest()}  {len(data)} bytes")


if __name__ == "__main__":
    main()
