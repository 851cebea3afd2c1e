"""DeepLabV3 TFLite -> ONNX conversion: shapes, reproducibility, agreement with the TFLite interpreter.

Needs the shared material (../shared from the repository root: models/deeplabv3_257_mv_gpu.tflite and
data/photos/coco128/images); skipped with a message where it is absent.
"""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
TFLITE = SHARED / "models" / "deeplabv3_257_mv_gpu.tflite"
PHOTOS = SHARED / "data" / "photos" / "coco128" / "images"
MAX_DIFF = 1e-3  # measured: about 4e-5 on the first 5 COCO photos (models/deeplabv3_conversion.json)

pytestmark = pytest.mark.skipif(
    not TFLITE.exists() or not PHOTOS.is_dir(),
    reason=f"shared material absent ({TFLITE} / {PHOTOS}): DeepLab conversion not tested",
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    pytest.importorskip("tflite2onnx", reason="tflite2onnx not installed (training/requirements-tools.txt)")
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed (training/requirements-tools.txt)")
    from tamperscope_training import convert_deeplab

    out = tmp_path_factory.mktemp("deeplab")
    report = convert_deeplab.main(["--tflite", str(TFLITE), "--out", str(out / "deeplab.onnx"),
                                   "--report", str(out / "report.json"), "--photos", str(PHOTOS),
                                   "--n-photos", "2"])
    return out / "deeplab.onnx", report


def test_shapes(converted):
    import onnxruntime as ort

    path, report = converted
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.shape == [1, 3, 257, 257] and out.shape == [1, 21, 257, 257]
    assert report["onnx"]["input"]["name"] == inp.name
    assert report["onnx"]["output"]["name"] == out.name


def test_matches_tflite(converted):
    _, report = converted
    comparison = report["comparison"]
    assert len(comparison["per_image"]) == 2
    assert comparison["max_abs_logit_diff"] < MAX_DIFF
    assert comparison["argmax_agreement_pct"] > 99.9


def test_reproducible_and_matches_committed_report(converted):
    _, report = converted
    assert report["onnx"]["reproducible"]
    committed = REPO / "models" / "deeplabv3_conversion.json"
    if not committed.exists():
        pytest.skip(f"{committed} not generated yet")
    assert json.loads(committed.read_text())["onnx"]["sha256"] == report["onnx"]["sha256"]
