"""The SAM and PSPNet stand-in ONNX models: interfaces, known masks, determinism."""

import hashlib
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import standin_sam  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    standin_sam.main(["--out-dir", str(out)])
    return out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_encoder_interface(built):
    sess = _session(built / "test/standin_sam_encoder.onnx")
    (inp,) = sess.get_inputs()
    assert inp.name == "image" and inp.shape == [1, 3, 1024, 1024]
    emb = sess.run(["image_embeddings"], {"image": np.zeros((1, 3, 1024, 1024), np.float32)})[0]
    assert emb.shape == (1, 256, 64, 64) and emb.dtype == np.float32


def test_decoder_interface_and_known_masks(built):
    sess = _session(built / "test/standin_sam_decoder.onnx")
    names = [i.name for i in sess.get_inputs()]
    assert names == ["image_embeddings", "point_coords", "point_labels", "mask_input",
                     "has_mask_input", "orig_im_size"]
    assert [o.name for o in sess.get_outputs()] == ["masks", "iou_predictions", "low_res_masks"]
    h, w = 384, 512  # scale 1024 / 512 = 2
    coords = np.array([[[400, 500], [0, 0]], [[100, 100], [0, 0]]], np.float32)
    masks, iou, low = sess.run(None, {
        "image_embeddings": np.zeros((1, 256, 64, 64), np.float32),
        "point_coords": coords,
        "point_labels": np.array([[1, -1], [1, -1]], np.float32),
        "mask_input": np.zeros((2, 1, 256, 256), np.float32),
        "has_mask_input": np.zeros(2, np.float32),
        "orig_im_size": np.array([h, w], np.float32),
    })
    assert masks.shape == (2, 4, h, w) and iou.shape == (2, 4) and low.shape == (2, 4, 256, 256)
    x0, y0, x1, y1 = (v / 2 for v in standin_sam.RECT)
    want_rect = np.zeros((h, w), bool)
    want_rect[int(y0):int(y1), int(x0):int(x1)] = True
    np.testing.assert_array_equal(masks[0, 1] > 0, want_rect)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = np.hypot((xx + 0.5) * 2 - 100, (yy + 0.5) * 2 - 100) < standin_sam.DISC_RADIUS
    np.testing.assert_array_equal(masks[1, 1] > 0, disc)
    np.testing.assert_allclose(iou, [standin_sam.IOU_RECT, standin_sam.IOU_DISC], rtol=1e-6)


def test_pspnet_argmax_is_the_pattern(built):
    sess = _session(built / "test/standin_pspnet.onnx")
    x = np.random.default_rng(0).standard_normal((1, 3, 473, 473)).astype(np.float32)
    logits = sess.run(["logits"], {"input": x})[0]
    assert logits.shape == (1, 150, 60, 60)
    np.testing.assert_array_equal(logits[0].argmax(axis=0), standin_sam.psp_pattern())


def test_regeneration_is_byte_identical_and_small(built, tmp_path):
    standin_sam.main(["--out-dir", str(tmp_path)])
    for rel in standin_sam.build_all():
        assert (tmp_path / rel).read_bytes() == (built / rel).read_bytes(), rel
        assert (built / rel).stat().st_size < 1_000_000


def test_committed_models_are_current(built):
    for rel in standin_sam.build_all():
        committed = REPO / "models" / rel
        assert hashlib.sha256(committed.read_bytes()).hexdigest() == \
            hashlib.sha256((built / rel).read_bytes()).hexdigest(), rel
