"""Hand-computed checks of the reference functions behind tests/fixtures/*.json."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import fixtures as fx  # noqa: E402


def test_edt_square_centre_is_two():
    d = fx.edt(fx.rect(7, 7, 2, 2, 5, 5))
    assert d[3, 3] == 2.0
    assert d[2, 2] == 1.0 and d[2, 3] == 1.0
    assert d[0, 0] == 0.0 and d.sum() == 10.0


def test_edt_single_pixel_and_border():
    assert fx.edt(fx.rect(5, 5, 2, 2, 3, 3)).sum() == 1.0
    # Mask touching the image border: the border is not background, only mask-0 pixels are.
    d = fx.edt(fx.rect(6, 5, 0, 0, 4, 3))
    assert d[0, 0] == 3.0  # nearest 0 is at (3, 0) below (rows 0..2 are mask)
    assert d[0, 3] == 1.0


def test_edt_l_shape_diagonal():
    m = np.zeros((3, 3), dtype=np.int64)
    m[0, 0] = 1
    m[1, 1] = 1
    m[2, 2] = 0
    assert fx.edt(m)[1, 1] == 1.0


def test_similarity_square_of_ones():
    s_paper, s_norm = fx.similarity(fx.rect(7, 7, 2, 2, 5, 5), np.ones((7, 7)))
    assert s_paper == pytest.approx(10 / 9)
    assert s_norm == pytest.approx(5 / 9)  # D/max = 0.5 on 8 pixels, 1 at the centre: 5 / 9


def test_geomean_values():
    one = np.ones((1, 1))
    assert fx.geomean([one, one, one])[0, 0] == pytest.approx(1.0)
    v = fx.geomean([np.full((1, 1), 0.25), np.full((1, 1), 0.5), one])[0, 0]
    assert v == pytest.approx(0.5, abs=1e-5)
    assert fx.geomean([np.zeros((1, 1)), one, one])[0, 0] == pytest.approx(0.01, abs=1e-5)


def test_refine_hand_case():
    # A = 0.5 everywhere, mask covers half: r1 = r0 = 0.5, so H = A.
    a = np.full((2, 2), 0.5)
    m = np.array([[1, 1], [0, 0]])
    r1, r0, h = fx.refine(a, m)
    assert r1 == 0.5 and r0 == 0.5
    np.testing.assert_allclose(h, a)
    # Mask matching a confident prior sharpens it.
    a = np.array([[0.9, 0.1]])
    m = np.array([[1, 0]])
    r1, r0, h = fx.refine(a, m)
    assert r1 == pytest.approx(0.9) and r0 == pytest.approx(0.1)
    assert h[0, 0] == pytest.approx(0.81 / (0.81 + 0.01))
    assert h[0, 1] == pytest.approx(0.01 / (0.01 + 0.81))


def test_auc_values():
    assert fx.auc(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1])) == 1.0
    assert fx.auc(np.array([0.4, 0.3, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert fx.auc(np.full(5, 0.5), np.array([0, 1, 0, 1, 1])) == 0.5
    # pos {0.4, 0.8} vs neg {0.1, 0.4, 0.2, 0.4}: 0.4 beats 2, ties 2 -> 3; 0.8 beats 4 -> 7/8.
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.2, 0.4])
    assert fx.auc(s, np.array([0, 1, 0, 1, 0, 0])) == pytest.approx(7 / 8)


def test_auc_matches_pairwise_count():
    rng = np.random.default_rng(1)
    s = np.round(rng.random(60), 1)
    l = (rng.random(60) < 0.4).astype(int)
    pos, neg = s[l == 1], s[l == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert fx.auc(s, l) == pytest.approx(pairs / (len(pos) * len(neg)))


def test_f1_values():
    s = np.array([0.2, 0.6, 0.7, 0.5, 0.9])
    l = np.array([1, 0, 1, 0, 1])
    # pred = [0, 1, 1, 1, 1]: tp 2, fp 2, fn 1 -> 4 / 7
    assert fx.f1(s, l) == pytest.approx(4 / 7)
    assert fx.f1(np.array([0.1, 0.2]), np.array([1, 1])) == 0.0


def test_cam_upsampling_and_normalisation():
    feats = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # 2 channels, 1x2
    c = fx.cam(feats, np.array([1.0, -2.0]), 4, 1)  # raw = ReLU([-2, 1]) = [0, 1]
    # half-pixel bilinear 2 -> 4: [0, 0.25, 0.75, 1]
    np.testing.assert_allclose(c[0], [0.0, 0.25, 0.75, 1.0])
    assert not fx.cam(feats, np.array([-1.0, -1.0]), 3, 3).any()


def test_area_resize_values():
    ramp = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_allclose(fx.area_resize(ramp, 2, 2), [[2.5, 4.5], [10.5, 12.5]])
    # 3 -> 2: output 0 covers [0, 1.5): (x0 + 0.5 x1) / 1.5
    row = np.array([[3.0, 6.0, 9.0]])
    np.testing.assert_allclose(fx.area_resize(row, 2, 1), [[4.0, 8.0]])
    # Means are preserved by box resampling.
    x = np.random.default_rng(0).random((9, 12))
    assert fx.area_resize(x, 5, 4).mean() == pytest.approx(x.mean())


def test_generated_files_layout(tmp_path):
    fx.main(["--out", str(tmp_path)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(fx.BUILDERS)
    edt = json.loads((tmp_path / "edt.json").read_text())
    for case in edt["cases"]:
        assert len(case["mask"]) == len(case["dist"]) == case["width"] * case["height"]
        assert 0 in case["mask"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["auc_cases"][0]["auc"] == 1.0
    cam = json.loads((tmp_path / "cam.json").read_text())
    assert any(c["fh"] == 3 and c["fw"] == 5 and c["width"] == 17 and c["height"] == 11 for c in cam["cases"])
    refine = json.loads((tmp_path / "refine.json").read_text())
    assert refine["eps"] == 1e-6 and all(math.isfinite(v) for c in refine["cases"] for v in c["refined"])
    # Deterministic: a second run writes the same bytes.
    again = tmp_path / "again"
    fx.main(["--out", str(again)])
    for n in names:
        assert (tmp_path / n).read_bytes() == (again / n).read_bytes()
