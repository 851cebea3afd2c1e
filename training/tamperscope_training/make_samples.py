"""Make the bundled sample images (assets/samples/) from Debian wallpaper photos.

The manipulations are made here, by this project's own code, so that the samples (and their
ground-truth masks) may be redistributed with the photos' attribution (assets/samples/ATTRIBUTION.md).

    python -m tamperscope_training.make_samples --wallpapers ../shared/data/photos/wallpapers --out assets/samples
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KLEIBER = "lomiri-wallpapers-20.04__Kleiber_by_Lukas_Baubkus.jpg"
LADYBIRD = "mate-backgrounds__LadyBird.jpg"


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def ellipse_mask(size, box, feather: float) -> Image.Image:
    m = Image.new("L", size, 0)
    ImageDraw.Draw(m).ellipse(box, fill=255)
    return m.filter(ImageFilter.GaussianBlur(feather)) if feather > 0 else m


def paste(dst: Image.Image, src: Image.Image, src_box, dst_xy, scale: float, feather: float):
    """Paste the ellipse inscribed in src_box of src at dst_xy (top-left), resampled by scale."""
    patch = src.crop(src_box)
    pw, ph = int(patch.width * scale), int(patch.height * scale)
    patch = patch.resize((pw, ph), Image.BICUBIC)
    alpha = ellipse_mask((pw, ph), (0, 0, pw - 1, ph - 1), feather)
    out = dst.copy()
    out.paste(patch, dst_xy, alpha)
    truth = Image.new("L", dst.size, 0)
    truth.paste(Image.fromarray((np.asarray(alpha) > 127).astype(np.uint8) * 255), dst_xy)
    return out, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--wallpapers", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    kleiber = Image.open(a.wallpapers / KLEIBER).convert("RGB").resize((1024, 576), Image.LANCZOS)
    ladybird = Image.open(a.wallpapers / LADYBIRD).convert("RGB").resize((1024, 640), Image.LANCZOS)
    # Both photos get a first JPEG generation at a different quality than the final save.
    kleiber1 = jpeg(kleiber, 75)
    ladybird1 = jpeg(ladybird, 95)

    # Splice: the ladybird (from another photo, another compression history) onto the blurred
    # background of the nuthatch photo, enlarged 1.6x with a feathered edge.
    spliced, truth = paste(kleiber1, ladybird1, (680, 270, 800, 380), (700, 300), 1.6, 2.0)
    spliced.save(a.out / "kleiber_spliced.jpg", quality=90)
    truth.save(a.out / "kleiber_spliced_mask.png")

    # Copy-move: a forget-me-not flower of the ladybird photo copied lower left.
    moved, truth = paste(ladybird1, ladybird1, (30, 60, 200, 230), (90, 420), 1.0, 1.5)
    moved.save(a.out / "ladybird_copymove.jpg", quality=90)
    truth.save(a.out / "ladybird_copymove_mask.png")

    # Authentic: the same history, no edit.
    kleiber1.save(a.out / "kleiber_authentic.jpg", quality=90)
    for p in sorted(a.out.glob("*")):
        print(p, p.stat().st_size)


if __name__ == "__main__":
    main()
