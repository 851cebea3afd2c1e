"""The stand-in ONNX models: interface, CAM == Grad-CAM head algebra, determinism."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import standin  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    standin.main(["--out-dir", str(out)])
    return out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _inits(path):
    return {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}


@pytest.mark.parametrize("name,batch,size", [("standin_classifier.onnx", 2, 384),
                                             ("test/wrong_input_shape.onnx", 1, 224)])
def test_classifier_interface_and_head(built, name, batch, size):
    path = built / name
    sess = _session(path)
    inp = sess.get_inputs()
    assert [i.name for i in inp] == ["ela"]
    expect_in = ["N", 3, 384, 384] if size == 384 else [1, 3, 224, 224]
    assert inp[0].shape == expect_in
    names = [f"{k}_b{v}" for v in (2, 3, 4) for k in ("logit", "features", "alpha")]
    assert [o.name for o in sess.get_outputs()] == names

    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, 3, size, size)) * 0.2).astype(np.float32)
    out = dict(zip(names, sess.run(names, {"ela": x})))
    inits = _inits(path)
    for v, stride in standin.VARIANTS.items():
        hw = size // stride
        f, z, a = out[f"features_b{v}"], out[f"logit_b{v}"], out[f"alpha_b{v}"]
        assert f.shape == (batch, standin.CHANNELS, hw, hw)
        assert z.shape == (batch, 1) and a.shape == (batch, standin.CHANNELS)
        w, b = inits[f"dense_w_b{v}"], inits[f"dense_b_b{v}"]
        assert w.shape == (1, standin.CHANNELS) and (w > 0).all() and (b < 0).all()
        # alpha == W / (h*w) for every item of the batch (Grad-CAM of a GAP + dense head).
        np.testing.assert_allclose(a, np.broadcast_to(w / (hw * hw), a.shape), rtol=1e-6)
        # logit == GAP(features) . W + b
        gap = f.astype(np.float64).mean(axis=(2, 3))
        np.testing.assert_allclose(z[:, 0], gap @ w[0] + b[0], rtol=1e-5, atol=1e-5)
        # features respond to |ELA|: non-negative, and the sign of the input does not matter
        assert (f >= 0).all()
        f_neg = sess.run([f"features_b{v}"], {"ela": -x})[0]
        np.testing.assert_allclose(f_neg.sum(axis=1), f.sum(axis=1), rtol=1e-4, atol=1e-6)


def test_classifier_is_energy_detector(built):
    sess = _session(built / "standin_classifier.onnx")
    rng = np.random.default_rng(1)
    quiet = (rng.standard_normal((1, 3, 384, 384)) * 0.03).astype(np.float32)
    loud = (rng.standard_normal((1, 3, 384, 384)) * 0.6).astype(np.float32)
    for v in (2, 3, 4):
        zq = sess.run([f"logit_b{v}"], {"ela": quiet})[0][0, 0]
        zl = sess.run([f"logit_b{v}"], {"ela": loud})[0][0, 0]
        assert zq < 0 < zl


def test_segmenter_pattern(built):
    sess = _session(built / "test/standin_segmenter.onnx")
    assert [(i.name, i.shape) for i in sess.get_inputs()] == [("input", [1, 3, 257, 257])]
    assert [(o.name, o.shape) for o in sess.get_outputs()] == [("logits", [1, 21, 257, 257])]
    want = standin.segmenter_pattern()
    assert want[128, 128] == 15 and want[5, 5] == 9 and want[250, 250] == 0
    for seed in (0, 1):
        x = np.random.default_rng(seed).uniform(-1, 1, (1, 3, 257, 257)).astype(np.float32)
        logits = sess.run(["logits"], {"input": x})[0]
        assert logits.shape == (1, 21, 257, 257)
        np.testing.assert_array_equal(logits[0].argmax(axis=0), want)


def test_regeneration_is_byte_identical(built, tmp_path):
    standin.main(["--out-dir", str(tmp_path)])
    for rel in standin.build_all():
        assert (tmp_path / rel).read_bytes() == (built / rel).read_bytes(), rel
        assert (built / rel).stat().st_size < 200_000


def test_committed_models_are_current(built):
    for rel in standin.build_all():
        committed = REPO / "models" / rel
        if not committed.exists():
            pytest.skip(f"{committed} not generated yet (python -m tamperscope_training.standin --out-dir models)")
        assert hashlib.sha256(committed.read_bytes()).hexdigest() == \
            hashlib.sha256((built / rel).read_bytes()).hexdigest(), rel
