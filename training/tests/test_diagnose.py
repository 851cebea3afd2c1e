"""The diagnosis helpers: the re-saved CASIA split keeps labels and draws its JPEG history
independently of them; the rank AUC and the quantisation-step reader are right on known inputs."""

import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import diagnose, recompress  # noqa: E402


def make_casia(root: Path, n: int = 6) -> None:
    split = root / "data" / "casia1" / "train"
    (split / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        label = i % 2
        img = Image.fromarray((np.random.default_rng(i).random((24, 32, 3)) * 255).astype(np.uint8))
        img.save(split / "images" / f"im{i}.jpg", quality=95 if label == 0 else 70)
        rows.append({"image": f"images/im{i}.jpg", "label": label, "kind": "authentic" if label == 0 else "splice",
                     "mask": ""})
    with open(split / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "label", "kind", "mask"])
        w.writeheader()
        w.writerows(rows)


def read(out: Path):
    with open(out / "labels.csv") as f:
        return list(csv.DictReader(f))


def test_recompress_keeps_labels_and_is_reproducible(tmp_path, monkeypatch):
    make_casia(tmp_path)
    monkeypatch.setattr(recompress, "SHARED", tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    recompress.main(["--out", str(a), "--seed", "5", "--q-min", "60", "--q-max", "90"])
    recompress.main(["--out", str(b), "--seed", "5", "--q-min", "60", "--q-max", "90"])
    rows = read(a)
    assert [r["label"] for r in rows] == ["0", "1"] * 3
    assert all(60 <= int(r["q_final"]) <= 90 for r in rows)
    for r in rows:
        assert (a / r["image"]).read_bytes() == (b / r["image"]).read_bytes()
    # The quality depends on the image index and the seed only, never on the label.
    monkeypatch.setattr(recompress, "read_labels", lambda _p: [(tmp_path / "data/casia1/train/images/im0.jpg",
                                                                1 - i % 2, "x") for i in range(6)])
    c = tmp_path / "c"
    recompress.main(["--out", str(c), "--seed", "5", "--q-min", "60", "--q-max", "90"])
    assert [r["q_final"] for r in read(c)] == [r["q_final"] for r in rows]


def test_auc_and_quant_step(tmp_path):
    assert diagnose.auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert diagnose.auc([0, 1, 0, 1], [1, 1, 1, 1]) == 0.5
    assert np.isnan(diagnose.auc([1, 1], [0.2, 0.3]))
    img = Image.fromarray(np.zeros((16, 16, 3), np.uint8))
    img.save(tmp_path / "q50.jpg", quality=50)
    img.save(tmp_path / "q95.jpg", quality=95)
    assert diagnose.quant_step(tmp_path / "q50.jpg") == 16  # IJG table DC 16 at quality 50
    assert diagnose.quant_step(tmp_path / "q95.jpg") < diagnose.quant_step(tmp_path / "q50.jpg")


class ElaEnergySession:
    """Stands in for an ONNX classifier: logit = mean |E|, one feature channel = |E| pooled 16x16, so its
    CAM follows the error levels."""

    class Out:
        def __init__(self, name):
            self.name = name

    def get_outputs(self):
        return [self.Out(n) for n in ("logit_b2", "features_b2", "alpha_b2")]

    def run(self, _names, feeds):
        e = np.abs(feeds["ela"][0]).sum(0)
        f = e.reshape(24, 16, 24, 16).mean((1, 3))
        return [np.array([[e.mean()]]), f[None, None], np.ones((1, 1))]


def test_heldout_scores_on_twins(tmp_path):
    """Twins whose manipulated member has strong error levels inside its mask: the scorer finds the
    region (pixel AUC 1), ranks every manipulated twin higher and reports per-kind figures."""
    (tmp_path / "ela").mkdir()
    (tmp_path / "masks").mkdir()
    rows = []
    rng = np.random.default_rng(0)
    for i in range(3):
        for label in (0, 1):
            stem = f"pair_{i}_{label}"
            e = rng.normal(0, 1, (3, 384, 384)).astype(np.float32)
            if label:
                m = np.zeros((256, 384), np.uint8)
                m[64 + 20 * i:160, 96:224 + 30 * i] = 255
                Image.fromarray(m).save(tmp_path / "masks" / f"{stem}.png")
                big = np.asarray(Image.fromarray(m).resize((384, 384), Image.NEAREST)) > 0
                e[:, big] *= 8
            np.save(tmp_path / "ela" / f"{stem}.npy", e)
            rows.append({"image": f"images/{stem}.jpg", "label": label, "kind": "splice" if label else "authentic",
                         "pair": i})
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    res = diagnose.heldout_scores(ElaEnergySession(), 2.0, tmp_path)
    assert res["images"] == 6 and res["manipulated"] == 3
    assert res["image_auc"] == 1.0 and res["pairs_manipulated_higher"] == 1.0
    splice = res["pixel_auc_by_kind"]["splice"]
    assert splice["n"] == 3 and splice["A2"] > 0.95 and splice["A"] > 0.95
    assert splice["centre_gaussian"] < splice["A2"]


def test_ela_energy_on_known_maps(tmp_path):
    """A region twice as hot as its surroundings: ratio 2, always hotter, and box-smoothed |ELA| ranks the
    region first (AUC near 1); a region as hot as the rest: ratio 1 and AUC near 0.5."""
    rng = np.random.default_rng(0)
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 24:72] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    items = []
    for i, gain in enumerate((2.0, 2.0, 1.0, 1.0)):
        e = rng.normal(0, 1, (3, 64, 96)).astype(np.float32)
        e[:, 16:48, 24:72] *= gain
        np.save(tmp_path / f"e{i}.npy", e)
        items.append((tmp_path / f"e{i}.npy", tmp_path / "m.png", "hot" if gain > 1 else "flat", 1 if i % 2 else 8))
    out = diagnose.ela_energy(items)
    assert out["hot"]["images"] == 2 and out["hot/dc1-2"]["images"] == 1 and out["hot/dc7+"]["images"] == 1
    assert 1.8 < out["hot"]["median_inside_over_outside"] < 2.2 and out["hot"]["share_inside_hotter"] == 1.0
    assert min(out["hot"][f"auc_box_r{r}"] for r in diagnose.BOX_RADII) > 0.95
    assert 0.9 < out["flat"]["median_inside_over_outside"] < 1.1
    assert abs(out["flat"]["auc_box_r8"] - 0.5) < 0.15
    assert "median_ela_over_texture" not in out["hot"]  # no image given


def test_ela_energy_separates_texture_from_history(tmp_path):
    """A region whose ELA is hot because its content is textured has texture ratio about equal to its ELA
    ratio (ELA over texture near 1); a region hot on flat content is hotter than its texture explains."""
    rng = np.random.default_rng(1)
    mask = np.zeros((64, 96), np.uint8)
    mask[16:48, 24:72] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    inside = mask > 0
    items = []
    for i, (texture_gain, ela_gain) in enumerate(((3.0, 3.0), (1.0, 3.0))):
        grey = 128 + rng.normal(0, 4, (64, 96))
        grey[inside] = 128 + (grey[inside] - 128) * texture_gain
        Image.fromarray(np.clip(grey, 0, 255).astype(np.uint8)).save(tmp_path / f"i{i}.png")
        e = rng.normal(0, 1, (3, 64, 96)).astype(np.float32)
        e[:, inside] *= ela_gain
        np.save(tmp_path / f"e{i}.npy", e)
        items.append((tmp_path / f"e{i}.npy", tmp_path / "m.png", "content" if i == 0 else "history", 8,
                       tmp_path / f"i{i}.png"))
    out = diagnose.ela_energy(items)
    assert out["content"]["median_texture_inside_over_outside"] > 2.5
    assert 0.8 < out["content"]["median_ela_over_texture"] < 1.25
    assert out["history"]["median_ela_over_texture"] > 2.5 and out["history"]["share_hotter_than_texture"] == 1.0
