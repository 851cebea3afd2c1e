"""evalrun's candidate manifest: the shipped manifest with only its classifier entries swapped."""
import sys
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training.evalrun import candidate_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_candidate_manifest_swaps_only_the_classifiers(tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"not a model, only hashed")
    shipped = (REPO / "models" / "manifest.toml").read_text()
    text = candidate_manifest(shipped, "cand", onnx, [5], 2.0, 'candidate: "quoted" command')
    got = tomllib.loads(text)["model"]
    want = tomllib.loads(shipped)["model"]
    classifiers = [m for m in got if m["role"] == "classifier"]
    assert [m["name"] for m in classifiers] == ["cand-b5"]
    c = classifiers[0]
    assert c["file"] == "model.onnx" and c["variant"] == 5 and len(c["sha256"]) == 64
    assert c["outputs"] == {"logit": "logit_b5", "features": "features_b5", "alpha": "alpha_b5"}
    assert c["source"] == 'candidate: "quoted" command'
    assert [m for m in got if m["role"] != "classifier"] == [m for m in want if m["role"] != "classifier"]
