"""How the classifier's probability follows the file's save history (docs/verdict.md, "Why the classifier
counts half"): the images of a ``tamperscope eval`` result grouped by the luminance quantisation table
they were last saved with, each table named by its nearest IJG quality.

Nearest IJG quality: the q in 1..100 whose libjpeg-scaled ITU-T T.81 Annex K luminance table (K.1,
scaled as ``jpeg_set_quality`` does, baseline-clamped to 1..255) has the least sum of squared log-ratios
to the file's table: the measure of the app's report (``engine::jpeg::ijg_equivalent_quality``), so a
row names the quality an analyst sees. Tables that are not IJG-scaled (Photoshop's, for example) keep
their distance, so they show as such rather than as a quality.

    python -m tamperscope_training.quality_table --eval ../models/measured.json \
        --dataset "$TAMPERSCOPE_SHARED/data/casia1/val"
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from PIL import Image

# ITU-T T.81 Annex K, Table K.1 (luminance), row-major, as Pillow reports ``quantization[0]``.
ANNEX_K_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]


def ijg_table(q: int) -> list[int]:
    """The luminance table libjpeg writes at quality ``q`` (1..100), baseline (entries 1..255)."""
    if not 1 <= q <= 100:
        raise ValueError(f"quality {q} outside 1..100")
    s = 5000 // q if q < 50 else 200 - 2 * q
    return [min(255, max(1, (v * s + 50) // 100)) for v in ANNEX_K_LUMA]


def nearest_ijg_quality(table) -> tuple[int, float]:
    """(q, distance): the nearest IJG quality of a 64-entry row-major luminance table and its sum of
    squared log-ratios (0 for a table libjpeg wrote; the lowest q wins a tie, as in the app)."""
    t = [math.log(max(v, 1)) for v in table]
    if len(t) != 64:
        raise ValueError(f"a luminance table has 64 entries, not {len(t)}")
    dist = {q: sum((math.log(a) - b) ** 2 for a, b in zip(ijg_table(q), t)) for q in range(1, 101)}
    q = min(dist, key=lambda k: (dist[k], k))
    return q, dist[q]


def luma_table(path: Path) -> tuple[int, ...]:
    """The first (luminance) quantisation table of a JPEG, row-major. Raises ValueError if none."""
    with Image.open(path) as im:
        q = getattr(im, "quantization", None)
        if not q:
            raise ValueError(f"{path}: not a JPEG with quantisation tables")
        return tuple(q[min(q)])


def group(eval_json: dict, dataset: Path) -> list[dict]:
    """One row per (class, luminance table): files, nearest IJG quality and distance, share of
    classifier probability >= 0.5, mean probability. Sorted by class, then quality."""
    rows: dict[tuple, list[float]] = {}
    for r in eval_json["per_image"]:
        if r.get("probability") is None:
            continue
        key = (bool(r["manipulated"]), luma_table(dataset / r["image"]))
        rows.setdefault(key, []).append(float(r["probability"]))
    out = []
    for (manipulated, table), ps in rows.items():
        q, dist = nearest_ijg_quality(table)
        out.append({"class": "manipulated" if manipulated else "authentic", "ijg_quality": q,
                    "distance": dist, "files": len(ps), "share_p_ge_0_5": sum(p >= 0.5 for p in ps) / len(ps),
                    "mean_p": sum(ps) / len(ps), "table_first_row": list(table[:8])})
    return sorted(out, key=lambda r: (r["class"], r["ijg_quality"], r["distance"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--eval", required=True, type=Path, help="a `tamperscope eval` result (JSON)")
    ap.add_argument("--dataset", required=True, type=Path, help="the folder its image paths are relative to")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    a = ap.parse_args(argv)
    rows = group(json.loads(a.eval.read_text()), a.dataset)
    for r in rows:
        print(f"{r['class']:12s} q {r['ijg_quality']:3d} (distance {r['distance']:5.2f}) files {r['files']:3d} "
              f"p>=0.5 {100 * r['share_p_ge_0_5']:3.0f} %  mean p {r['mean_p']:.2f}  row0 {r['table_first_row']}")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
