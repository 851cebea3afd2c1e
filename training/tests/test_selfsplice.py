"""selfsplice.py's pairs: both twins carry the same JPEG history (tables of a CASIA train file) and differ
only around the pasted region; only authentic train photos are hosts; output is reproducible.
train.paired_order keeps twins next to each other."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import selfsplice  # noqa: E402
from tamperscope_training.train import paired_order  # noqa: E402


def textured(seed: int, h: int, w: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = ndimage.gaussian_filter(rng.random((h, w, 3)) * 255, sigma=(2, 2, 0))
    return Image.fromarray(np.clip(base + rng.normal(0, 8, (h, w, 3)), 0, 255).astype(np.uint8))


def make_shared(root: Path) -> Path:
    split = root / "data" / "casia1" / "train"
    (split / "images").mkdir(parents=True)
    rows = []
    for i in range(6):
        label = int(i >= 4)  # 4 authentic hosts, 2 manipulated files (never hosts)
        textured(i, 128, 192).save(split / "images" / f"im{i}.jpg", quality=[75, 85, 92, 95, 60, 98][i],
                                   subsampling=[2, 0, 2, 0, 2, 0][i])
        rows.append({"image": f"images/im{i}.jpg", "label": label, "kind": "splicing" if label else "authentic"})
    with open(split / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["image", "label", "kind"])
        w.writeheader()
        w.writerows(rows)
    photos = root / "data" / "photos"
    (photos / "bsds500" / "segments").mkdir(parents=True)
    seg = np.zeros((60, 80), np.uint16)
    seg[10:40, 20:60] = 1
    seg[40:, :] = 2
    Image.fromarray(seg).save(photos / "bsds500" / "segments" / "s0.png")
    (photos / "coco128" / "images").mkdir(parents=True)
    (photos / "coco128" / "semantic_masks").mkdir(parents=True)
    textured(9, 96, 96).save(photos / "coco128" / "images" / "c0.jpg", quality=90)
    lab = np.zeros((96, 96), np.uint8)
    lab[20:60, 30:70] = 3
    Image.fromarray(lab).save(photos / "coco128" / "semantic_masks" / "c0.png")
    return photos


def read(out: Path):
    with open(out / "labels.csv") as f:
        return list(csv.DictReader(f))


def test_pairs_share_history_and_differ_only_near_the_region(tmp_path, monkeypatch):
    photos = make_shared(tmp_path)
    monkeypatch.setattr(selfsplice, "SHARED", tmp_path)
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        selfsplice.main(["--out", str(out), "--pairs-per-host", "3", "--seed", "2", "--photos", str(photos)])
    rows = read(a)
    assert len(rows) == 2 * 4 * 3
    hosts = {f"im{i}.jpg" for i in range(4)}
    assert {r["host"] for r in rows} == hosts  # only authentic photos are hosts
    kinds = set()
    for au, sp in zip(rows[0::2], rows[1::2]):
        assert (au["label"], sp["label"]) == ("0", "1") and au["pair"] == sp["pair"]
        assert au["history_of"] == sp["history_of"]
        kinds.add(sp["kind"])
        ia, ib = Image.open(a / au["image"]), Image.open(a / sp["image"])
        ref = Image.open(tmp_path / "data" / "casia1" / "train" / "images" / au["history_of"])
        assert ia.quantization == ib.quantization == ref.quantization
        mask = np.asarray(Image.open(a / sp["image"].replace("images/", "masks/").replace(".jpg", ".png"))) > 127
        assert mask.any()
        # outside the pasted region (grown by the feathering and a 16x16 JPEG block), the twins are equal
        near = ndimage.binary_dilation(mask, iterations=30)
        da = np.asarray(ia.convert("RGB"), np.int16)
        db = np.asarray(ib.convert("RGB"), np.int16)
        assert np.abs(da - db)[~near].max() == 0
        assert np.abs(da - db)[mask].max() > 0
    assert len(kinds) >= 2
    for r in rows:
        assert (a / r["image"]).read_bytes() == (b / r["image"]).read_bytes()


def test_the_recipe_is_recorded_beside_the_pairs(tmp_path, monkeypatch):
    """A generated split names the command, arguments and commit that made it, and read_recipe finds it
    by split name (train.py copies it into the run summary, so a shipped model names its data's recipe)."""
    from tamperscope_training import data

    photos = make_shared(tmp_path)
    monkeypatch.setattr(selfsplice, "SHARED", tmp_path)
    cache = tmp_path / "cache"
    argv = ["--out", str(cache / "casia_pairs_t"), "--pairs-per-host", "1", "--seed", "4", "--fresh-fraction", "0.5",
            "--photos", str(photos)]
    selfsplice.main(argv)
    monkeypatch.setattr(data, "CACHE", cache)
    recipe = data.read_recipe("casia_pairs_t")
    assert recipe["command"] == "python -m tamperscope_training.selfsplice " + " ".join(argv)
    assert recipe["args"]["seed"] == 4 and recipe["args"]["fresh_fraction"] == 0.5
    assert len(recipe["commit"]) == 40
    assert data.read_recipe("casia_train") is None  # CASIA's own splits have no recipe


def test_val_split_is_refused(tmp_path):
    with pytest.raises(SystemExit):
        selfsplice.main(["--out", str(tmp_path / "o"), "--split", "val"])


def test_paired_order_keeps_twins_adjacent():
    groups = ["s:0", "p:pair0", "p:pair0", "s:1", "p:pair1", "p:pair1", "s:2"]
    order = paired_order(groups, torch.Generator().manual_seed(3)).tolist()
    assert sorted(order) == list(range(len(groups)))
    for pair in ([1, 2], [4, 5]):
        i = order.index(pair[0])
        assert order[i + 1] == pair[1]


def test_exact_copy_move_keeps_the_pixels(tmp_path):
    """An exact (not resampled) copy-move pastes the host's own pixels: before the final JPEG, the region
    equals a same-shaped block of the host."""
    photos = make_shared(tmp_path)
    host = textured(3, 128, 192)
    for seed in range(40):
        rng = np.random.default_rng([seed])
        img, mask, kind = selfsplice.manipulate(host, [], rng, photos, exact_fraction=1.0)
        if kind == "copy-move-exact":
            break
    else:
        pytest.fail("no exact copy-move in 40 draws")
    got = np.asarray(img, np.int16)
    ys, xs = np.nonzero(mask)
    region = got[ys, xs]
    src = np.asarray(host, np.int16)
    # the pasted pixels occur in the host at one offset (the copy's source)
    y0, x0 = ys.min(), xs.min()
    h, w = ys.max() - y0 + 1, xs.max() - x0 + 1
    found = any(np.array_equal(src[ys - y0 + sy, xs - x0 + sx], region)
                for sy in range(0, 128 - h + 1) for sx in range(0, 192 - w + 1))
    assert found


def test_fresh_donor_is_a_shrunk_high_quality_photo(tmp_path):
    """fresh_donor never picks a COCO photo (low quality, objects only), shrinks by 2-4x where the photo is
    large enough and never below the host's size."""
    photos = make_shared(tmp_path)
    (photos / "urban100").mkdir()
    textured(11, 900, 1200).save(photos / "urban100" / "big.jpg", quality=95)
    textured(12, 300, 420).save(photos / "urban100" / "small.jpg", quality=95)
    sizes = set()
    for seed in range(20):
        im = selfsplice.fresh_donor(np.random.default_rng([seed]), photos, (192, 128))
        assert im.width >= 192 and im.height >= 128
        sizes.add(im.size)
        if im.width > 420:  # from big.jpg
            assert 1200 / 4 - 1 <= im.width <= 1200 / 2 + 1
    assert any(w > 420 for w, _ in sizes) and any(w <= 420 for w, _ in sizes)


def test_fresh_fraction_picks_the_donor(tmp_path):
    """At --fresh-fraction 1 every non-COCO splice takes a fresh donor, at 0 none does; copy-moves and
    COCO splices are drawn as before."""
    photos = make_shared(tmp_path)
    (photos / "urban100").mkdir()
    textured(11, 600, 800).save(photos / "urban100" / "big.jpg", quality=95)
    host = textured(3, 128, 192)
    donors = [tmp_path / "data" / "casia1" / "train" / "images" / f"im{i}.jpg" for i in range(4)]
    kinds = {0.0: set(), 1.0: set()}
    for frac in kinds:
        for seed in range(30):
            _, mask, kind = selfsplice.manipulate(host, donors, np.random.default_rng([seed]), photos,
                                                  fresh_fraction=frac)
            assert mask.any()
            kinds[frac].add(kind)
    assert "splice-fresh" in kinds[1.0] and "splice-casia" not in kinds[1.0]
    assert "splice-casia" in kinds[0.0] and "splice-fresh" not in kinds[0.0]
    assert "copy-move" in kinds[0.0] & kinds[1.0]


def test_textured_cut_keeps_the_donor_scale_and_picks_texture():
    """The region is cut at the donor's own scale (pixels copied, not resampled) from its most textured
    candidate position, and has about the target area."""
    donor = np.full((200, 300, 3), 128, np.uint8)
    rng = np.random.default_rng(0)
    donor[:, 150:] = rng.integers(0, 256, (200, 150, 3))  # right half textured, left half flat
    donor_im = Image.fromarray(donor)
    m = np.ones((20, 20), np.uint8)
    patch, alpha = selfsplice.textured_cut(donor_im, m, 40 * 40, np.random.default_rng(1), candidates=16)
    assert patch.size == (40, 40) and alpha.shape == (40, 40) and alpha.min() == 1.0
    p = np.asarray(patch)
    assert p.std() > 50, "the textured half was chosen"
    # copied pixel for pixel: the block occurs in the donor as it is
    hits = [(x, y) for y in range(0, 161) for x in range(150, 261) if np.array_equal(donor[y:y + 40, x:x + 40], p)]
    assert len(hits) == 1


def test_fresh_textured_kind(tmp_path):
    photos = make_shared(tmp_path)
    (photos / "urban100").mkdir()
    textured(11, 600, 800).save(photos / "urban100" / "big.jpg", quality=95)
    host = textured(3, 128, 192)
    donors = [tmp_path / "data" / "casia1" / "train" / "images" / f"im{i}.jpg" for i in range(4)]
    kinds = set()
    for seed in range(30):
        _, mask, kind = selfsplice.manipulate(host, donors, np.random.default_rng([seed]), photos,
                                              fresh_fraction=1.0, fresh_textured=True)
        assert mask.any()
        kinds.add(kind)
    assert "splice-fresh-textured" in kinds and "splice-fresh" not in kinds and "splice-casia" not in kinds
