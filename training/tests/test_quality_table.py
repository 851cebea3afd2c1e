import io
import json

import pytest
from PIL import Image

from tamperscope_training import quality_table as qt


def _jpeg(path, q):
    Image.new("RGB", (16, 16), (120, 90, 60)).save(path, "JPEG", quality=q)


@pytest.mark.parametrize("q", [10, 50, 75, 93, 100])
def test_libjpeg_tables_are_found_at_distance_zero(q):
    b = io.BytesIO()
    _jpeg(b, q)
    b.seek(0)
    with Image.open(b) as im:
        assert qt.nearest_ijg_quality(im.quantization[0]) == (q, 0)


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError):
        qt.ijg_table(0)
    with pytest.raises(ValueError):
        qt.nearest_ijg_quality([1] * 63)
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    with pytest.raises(ValueError):
        qt.luma_table(png)


def test_group_counts_per_class_and_table(tmp_path):
    for name, q in [("a.jpg", 80), ("b.jpg", 80), ("c.jpg", 95)]:
        _jpeg(tmp_path / name, q)
    ev = {"per_image": [
        {"image": "a.jpg", "manipulated": False, "probability": 0.7},
        {"image": "b.jpg", "manipulated": False, "probability": 0.1},
        {"image": "c.jpg", "manipulated": True, "probability": 0.9},
        {"image": "c.jpg", "manipulated": True, "probability": None},
    ]}
    rows = qt.group(json.loads(json.dumps(ev)), tmp_path)
    assert [(r["class"], r["ijg_quality"], r["files"]) for r in rows] == [("authentic", 80, 2), ("manipulated", 95, 1)]
    assert rows[0]["share_p_ge_0_5"] == 0.5 and rows[0]["mean_p"] == pytest.approx(0.4)
