"""ONNX Runtime conv throughput on this machine (the GFLOP/s used to project SAM encoder times).

    .venv/bin/python -m tamperscope_training.bench_conv   (from training/)
"""
import time, numpy as np, onnx, onnxruntime as ort
from onnx import helper, TensorProto, numpy_helper
C, H = 256, 64
w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((C, C, 3, 3)).astype(np.float32) * 0.01, "w")
g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])], "c",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, H, H])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, C, H, H])], initializer=[w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]); m.ir_version = 8
flop = 2 * C * C * 9 * H * H
for threads in (1, 2):
    so = ort.SessionOptions(); so.intra_op_num_threads = threads
    s = ort.InferenceSession(m.SerializeToString(), so)
    x = np.random.default_rng(1).standard_normal((1, C, H, H)).astype(np.float32)
    for _ in range(3): s.run(None, {"x": x})
    ts = []
    for _ in range(15):
        t = time.perf_counter(); s.run(None, {"x": x}); ts.append(time.perf_counter() - t)
    med = float(np.median(ts))
    print(f"threads={threads} conv3x3 {C}->{C} {H}x{H}: {flop/1e9:.2f} GFLOP, median {med*1e3:.1f} ms, {flop/med/1e9:.1f} GFLOP/s (ORT {ort.__version__})")
