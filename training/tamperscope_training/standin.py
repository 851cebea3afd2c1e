"""Stand-in ONNX models with the project's model interfaces (METHOD.md section 8), no training.

    python -m tamperscope_training.standin --out-dir models

Writes, deterministically (seed 0, byte-identical on re-run):
- standin_classifier.onnx: the WCBnet classifier interface. Input `ela` float32 [N,3,384,384]
  (signed ELA / 16). For each variant v in (2, 3, 4), with stride s = 4, 8, 16 and h = w = 384 / s:
    front     = 1x1 Conv 3->4 (fixed mixing), then Relu(+x) and Relu(-x): 8 channels, |x| split by sign
    features  = AveragePool(front, kernel s, stride s)                  `features_b{v}` [N,8,h,w]
    logit     = Gemm(GlobalAveragePool(features), W_v, b)               `logit_b{v}`    [N,1]
    alpha     = W_v / (h*w), expanded over N                            `alpha_b{v}`    [N,8]
  Because the head is exactly GAP + dense, dz/dF[k,y,x] = W_k / (h*w) = alpha_k: Grad-CAM == CAM.
  W_v > 0 and b < 0: p = sigmoid(logit) grows with the local error-level energy; p = 0.5 when
  mean |ELA/16| is about ENERGY_AT_HALF (CASIA v1 authentic images are mostly below, heavily
  re-saved or resampled images above). A detector of error-level energy, not of manipulation.
- test/wrong_input_shape.onnx: the same graph with input `ela` [1,3,224,224] (features 56/28/14),
  for testing that the engine refuses a model whose input shape differs from its manifest entry.
- test/standin_segmenter.onnx: semantic-segmenter interface, input `input` float32 [1,3,257,257],
  output `logits` [1,21,257,257] whose argmax ignores the input values (the input is consumed as
  0 * sum(input)): SEGMENTER_PATTERN below (class 15 in a centred rectangle, class 9 in the top-left
  square, class 0 elsewhere; rows/cols are half-open [start, end)).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
CHANNELS = 8
VARIANTS = {2: 4, 3: 8, 4: 16}  # variant -> stride
CLASSIFIER_SIZE = 384
ENERGY_AT_HALF = 0.1  # mean |input| at which p = 0.5
LOGIT_SLOPE = 20.0  # d logit / d mean|input| (approximately)

SEG_SIZE = 257
SEG_CLASSES = 21
# class -> (row_start, row_end, col_start, col_end); class 0 everywhere else.
SEGMENTER_PATTERN = {15: (64, 193, 80, 177), 9: (0, 40, 0, 40)}


def _init(name: str, a: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name)


def classifier_weights(seed: int = 0) -> dict:
    """Fixed weights: mixing [4,3] (rows ~ R, G, B, mean), dense W_v [1,8] > 0, bias b_v < 0."""
    rng = np.random.default_rng(seed)
    mixing = np.vstack([np.eye(3), np.full((1, 3), 1 / 3)]) + 0.1 * rng.standard_normal((4, 3))
    mixing /= np.abs(mixing).sum(axis=1, keepdims=True)  # each row: sum of |m| = 1
    out = {"mixing": mixing}
    # Each (+, -) channel pair sums to mean |m . x| <= mean |x|; four pairs, so W ~ slope / 4.
    for v in VARIANTS:
        w = (LOGIT_SLOPE / 4) * rng.uniform(0.8, 1.2, size=(1, CHANNELS))
        out[f"W_b{v}"] = w
        out[f"b_b{v}"] = np.array([-LOGIT_SLOPE * ENERGY_AT_HALF])
    return out


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="tamperscope_training.standin")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(deterministic=True)


def build_classifier(batch="N", size: int = CLASSIFIER_SIZE, seed: int = 0) -> bytes:
    wts = classifier_weights(seed)
    mixing = wts["mixing"]
    conv_w = np.vstack([mixing, -mixing]).reshape(2 * 4, 3, 1, 1)  # +x and -x responses
    inits = [_init("front_w", conv_w)]
    nodes = [
        helper.make_node("Conv", ["ela", "front_w"], ["front_lin"], kernel_shape=[1, 1]),
        helper.make_node("Relu", ["front_lin"], ["front"]),
    ]
    outputs = []
    for v, s in VARIANTS.items():
        hw = size // s
        w, b = wts[f"W_b{v}"], wts[f"b_b{v}"]
        inits += [_init(f"dense_w_b{v}", w), _init(f"dense_b_b{v}", b),
                  _init(f"alpha_const_b{v}", w / (hw * hw))]
        nodes += [
            helper.make_node("AveragePool", ["front"], [f"features_b{v}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("GlobalAveragePool", [f"features_b{v}"], [f"gap4_b{v}"]),
            helper.make_node("Flatten", [f"gap4_b{v}"], [f"gap_b{v}"], axis=1),
            helper.make_node("Gemm", [f"gap_b{v}", f"dense_w_b{v}", f"dense_b_b{v}"], [f"logit_b{v}"], transB=1),
            helper.make_node("Shape", [f"gap_b{v}"], [f"gap_shape_b{v}"]),
            helper.make_node("Expand", [f"alpha_const_b{v}", f"gap_shape_b{v}"], [f"alpha_b{v}"]),
        ]
        outputs += [
            helper.make_tensor_value_info(f"logit_b{v}", TensorProto.FLOAT, [batch, 1]),
            helper.make_tensor_value_info(f"features_b{v}", TensorProto.FLOAT, [batch, CHANNELS, hw, hw]),
            helper.make_tensor_value_info(f"alpha_b{v}", TensorProto.FLOAT, [batch, CHANNELS]),
        ]
    graph = helper.make_graph(
        nodes, "standin_classifier",
        [helper.make_tensor_value_info("ela", TensorProto.FLOAT, [batch, 3, size, size])],
        outputs, initializer=inits)
    return _model(graph)


def rect_labels(pattern: dict, size: int) -> np.ndarray:
    """The [size, size] label map of class rectangles ``pattern`` (class 0 elsewhere)."""
    labels = np.zeros((size, size), dtype=np.int64)
    for cls, (r0, r1, c0, c1) in pattern.items():
        labels[r0:r1, c0:c1] = cls
    return labels


def segmenter_pattern() -> np.ndarray:
    """The argmax [257, 257] the stand-in segmenter produces for any input."""
    return rect_labels(SEGMENTER_PATTERN, SEG_SIZE)


def build_rect_segmenter(name: str, pattern: dict, classes: int, in_size: int, out_size: int) -> bytes:
    """A semantic segmenter whose argmax is ``rect_labels(pattern, out_size)`` for any input.

    logits[c, y, x] = rows[c, y] * cols[c, x] + bias[c] + 0 * sum(input): the input is read (so the
    graph has a real dependency on it) but cannot change the result."""
    rows = np.zeros((1, classes, out_size, 1))
    cols = np.zeros((1, classes, 1, out_size))
    bias = np.full((1, classes, 1, 1), -1.0)
    bias[0, 0] = 1.0  # class 0 wins where no rectangle is
    for cls, (r0, r1, c0, c1) in pattern.items():
        rows[0, cls, r0:r1, 0] = 4.0
        cols[0, cls, 0, c0:c1] = 1.0
    # Same spatial size: sum over channels only (per pixel); otherwise over everything.
    axes_name, axes = ("axis1", [1]) if in_size == out_size else ("axes", [1, 2, 3])
    inits = [_init("rows", rows), _init("cols", cols), _init("bias", bias), _init("zero", np.zeros(1)),
             numpy_helper.from_array(np.array(axes, dtype=np.int64), axes_name)]
    nodes = [
        helper.make_node("ReduceSum", ["input", axes_name], ["input_sum"], keepdims=1),
        helper.make_node("Mul", ["input_sum", "zero"], ["input_zero"]),
        helper.make_node("Mul", ["rows", "cols"], ["pattern"]),
        helper.make_node("Add", ["pattern", "bias"], ["pattern_b"]),
        helper.make_node("Add", ["pattern_b", "input_zero"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, in_size, in_size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, classes, out_size, out_size])],
        initializer=inits)
    return _model(graph)


def build_segmenter() -> bytes:
    return build_rect_segmenter("standin_segmenter", SEGMENTER_PATTERN, SEG_CLASSES, SEG_SIZE, SEG_SIZE)


def build_all() -> dict[str, bytes]:
    return {
        "standin_classifier.onnx": build_classifier(),
        "test/wrong_input_shape.onnx": build_classifier(batch=1, size=224),
        "test/standin_segmenter.onnx": build_segmenter(),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Write the stand-in ONNX models.")
    ap.add_argument("--out-dir", type=Path, required=True, help="models folder (e.g. models)")
    args = ap.parse_args(argv)
    for rel, data in build_all().items():
        path = args.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"{path}  sha256 {hashlib.sha256(data).hexdigest()}  {len(data)} bytes")


if __name__ == "__main__":
    main()
