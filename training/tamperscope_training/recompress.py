"""CASIA v1 train re-saved with a JPEG history that does not depend on the label.

Why: in CASIA v1 the final quantisation table almost gives the label away (on val, the DC step of the
luminance table alone has an image-level AUC of 0.877: steps 2, 3 and 5 occur only in authentic
images, 1, 8 and 12 only in spliced ones). A classifier trained on the files as they are can learn
that global shortcut, and a global cue has nothing to localise. Re-saving every training image at a
quality drawn from one distribution for both labels removes the final table as a cue (earlier
compressions still leave traces, but weaker ones). Masks are not read.

    python -m tamperscope_training.recompress --out ../.cache/casia_rq --seed 3
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from .data import SHARED, read_labels, write_split


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--split", default="train")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--q-min", type=int, default=65)
    ap.add_argument("--q-max", type=int, default=92)
    args = ap.parse_args(argv)
    rows = read_labels(SHARED / "data" / "casia1" / args.split / "labels.csv")
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    table = []
    for i, (path, label, kind) in enumerate(rows):
        rng = np.random.default_rng([args.seed, i])  # per image, independent of the label
        q = int(rng.integers(args.q_min, args.q_max + 1))
        sub = int(rng.choice([0, 2]))
        name = f"images/rq_{path.stem}.jpg"
        Image.open(path).convert("RGB").save(out / name, "JPEG", quality=q, subsampling=sub)
        table.append({"image": name, "label": label, "kind": kind, "q_final": q})
    write_split(out, table, "tamperscope_training.recompress", argv, args)
    print(f"recompress: {len(table)} images -> {out}")


if __name__ == "__main__":
    main()
