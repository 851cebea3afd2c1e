"""Table-neutral selection (issue 19): the table-only AUC and select.py's figures from eval results."""
import csv
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tamperscope_training.data import table_only_auc  # noqa: E402
from tamperscope_training.select import pairs_higher, paired, summarise  # noqa: E402


def _jpeg(path, q):
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path, "JPEG", quality=q)
    return path


def test_table_only_auc_sees_a_label_in_the_tables_and_not_in_twins(tmp_path):
    # the label follows the quality: every table predicts its label
    paths = [_jpeg(tmp_path / f"a{i}.jpg", 70 if i % 2 else 95) for i in range(8)]
    labels = [i % 2 for i in range(8)]
    assert table_only_auc(paths, labels) == 1.0
    # twins share their table (and their group): nothing is left to predict with
    groups = [i // 2 for i in range(8)]
    twins = [_jpeg(tmp_path / f"t{i}.jpg", 70 + 5 * (i // 2)) for i in range(8)]
    assert table_only_auc(twins, labels, groups) == 0.5


def _eval(probs):
    per = [{"image": f"images/p{k}_{m}.jpg", "manipulated": bool(m), "kind": "x", "probability": p}
           for k, (p0, p1) in enumerate(probs) for m, p in ((0, p0), (1, p1))]
    pix = {m: {"auc": a, "f1": 0.2, "auc_se": 0.02} for m, a in
           {"cam2": 0.6, "cam3": 0.62, "cam4": 0.61, "fused": 0.65, "refined:deeplabv3:paper": 0.7}.items()}
    return {"images_analysed": len(per), "per_image": per, "pixel_level": pix,
            "image_level": {"auc": 0.8, "variants": {"b2": {"auc": 0.7}, "b3": {"auc": 0.9}, "verdict": {"auc": 0.95}}}}


def test_summarise_reads_pairs_variants_and_claims(tmp_path):
    rows = [{"image": f"images/p{k}_{m}.jpg", "label": m, "pair": k} for k in range(3) for m in (0, 1)]
    (tmp_path / "images").mkdir()
    for r in rows:
        _jpeg(tmp_path / r["image"], 90)
    with open(tmp_path / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    ev = _eval([(0.2, 0.9), (0.5, 0.5), (0.7, 0.1)])
    assert pairs_higher(ev, tmp_path) == 0.5  # one higher, one tie (half), one lower
    s = summarise(ev, tmp_path)
    assert s["best_variant_image_auc"] == 0.9  # b2/b3 only: the verdict is not a classifier variant
    assert s["claims"] == {"fused_beats_each_scale": True, "refinement_beats_raw_map": True}
    assert s["table_only_auc"] == 0.5


def test_paired_reads_compare_evals_rows():
    cmp = {"pixel_level": [{"map": "fused", "diff": 0.01234, "diff_se": 0.00456, "f1_diff": -0.03, "f1_diff_se": 0.01},
                           {"map": "prior", "diff": 0.1}]}
    assert paired(cmp, "fused") == (0.0123, 0.0046)
    assert paired(cmp, "fused", "f1") == (-0.03, 0.01)
    assert paired(cmp, "prior", "f1") is None
    assert paired(cmp, "prior") is None and paired(cmp, "cam2") is None
