"""The Rust A-DJPG map (src/engine/compression.rs, coefficients read by libjpeg-turbo-rs) agrees with the numpy
reference (dq_reference.py, coefficients read by libjpeg through jpeglib) on generated files: the same primary
step, gain and use of every frequency, and the same block posterior to within the 8-bit PNG's rounding."""

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training import dq_reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "target" / "release" / "tamperscope"


def photo() -> Image.Image:
    # The bundled sample scaled by 4/7 (its old 8x8 lattice falls on no period of the new grid).
    im = Image.open(REPO / "assets" / "samples" / "kleiber_authentic.jpg").convert("RGB")
    return im.resize((585, 329), Image.LANCZOS).crop((36, 20, 36 + 384, 20 + 256))


def jpeg(im: Image.Image, q: int) -> Image.Image:
    buf = BytesIO()
    im.save(buf, "JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def make_files(tmp: Path) -> list[Path]:
    orig = photo()
    first = jpeg(orig, 70)
    forged = first.copy()
    forged.paste(orig.crop((103, 61, 203, 141)), (100, 60))  # never compressed, off the grid
    files = [tmp / "double.jpg", tmp / "single.jpg", tmp / "double_q95.jpg"]
    forged.save(files[0], quality=90)
    orig.save(files[1], quality=85)
    jpeg(orig, 60).save(files[2], quality=95)
    return files


@pytest.mark.skipif(not BINARY.exists(), reason="needs the release binary (packaging/setup.sh builds it)")
def test_rust_adjpg_agrees_with_the_numpy_reference(tmp_path):
    files = make_files(tmp_path)
    out = tmp_path / "out"
    subprocess.run([str(BINARY), "analyze", *map(str, files), "--out", str(out), "--segmenter", "felzenszwalb"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    used_counts = []
    for f in files:
        rec = json.loads((out / f.stem / "analysis.json").read_text())["compression"]
        p_ref, info = dq_reference.adjpg(str(f))
        assert abs(rec["rounding_sd"] - info["rounding_sd"]) < 1e-9
        for r, p in zip(rec["adjpg_fits"], info["fits"]):
            assert (r["u"], r["v"], r["q2"]) == (p["u"], p["v"], p["q2"])
            assert r["q1"] == p["q1"], (f.name, r, p)
            assert r["used"] == p["used"], (f.name, r, p)
            assert abs(r["gain"] - p["gain"]) <= 1e-6 * max(1.0, abs(p["gain"])), (f.name, r, p)
        used_counts.append(rec["adjpg_frequencies_used"])
        raw = np.asarray(Image.open(out / f.stem / "adjpg_raw.png"), dtype=np.float64) / 255.0
        pix = np.kron(p_ref, np.ones((8, 8)))[: raw.shape[0], : raw.shape[1]]
        assert np.abs(pix - raw).max() <= 1.0 / 255 + 1e-6, f.name
    # The double-compressed files carry a trace, the single-compressed one does not.
    assert used_counts[0] >= 10 and used_counts[2] >= 10 and used_counts[1] == 0, used_counts
