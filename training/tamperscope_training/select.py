"""Choose classifiers on table-neutral data (issue 19): the selection rule and the figures behind it.

CASIA v1's files give their label away through their quantisation tables (``data.table_only_auc``:
0.998 on train, 1.000 on val), so CASIA image AUC rewards a classifier that reads the file's history
and never chooses one here. A candidate is scored with the app's own code (``tamperscope eval``) on two
sets where only the region separates the classes, generated deterministically under ``.cache/select/``
and never used in training:

* ``twins_val``: each authentic CASIA v1 *val* photo (no run trains on val) twice, untouched and with one
  pasted region (half pixel-exact at a grid-shifted offset, half resampled; half of the splices from
  fresh high-quality donors), both saved with the same tables (selfsplice.py, seed 66);
* ``photos``: synthetic splices and copy-moves on the Kodak24 and SunHays80 photos, authentic and
  manipulated with the same JPEG history distribution (synth.py, seed 77). Seed 77 is never a training
  seed, but these folders are among synth.py's training bases (shared/data/photos holds no other
  photos: bsds500 there is segment maps only), so a model trained with ``synth`` has seen other crops of
  them: this set favours such models (the shipped one), if any.

Per set: the table-only AUC (near 0.5 by construction), image AUC per variant and of the mean
probability, how often the manipulated twin scores higher (``twins_val``), pixel AUC / F1@0.5 of
A_2, A_3, A_4, A (fused), H in the paper's configuration and the default H, with the centred prior and
plain |ELA| beside them (METHOD.md s.7), and both paper claims (A beats each A_i; H beats A). CASIA val
pixel figures (from ``evalrun``) are reported beside them, with CASIA image AUC, never used.

The rule (training/README.md, "Choosing a classifier"): a candidate replaces the shipped classifier when,
against it, (1) the best variant's image AUC on the table-neutral sets (the mean of the two) is higher,
(2) the pixel AUC of A is higher on both sets, and (3) on CASIA v1 val no map of the default
configuration (prior, default H) is worse by more than one paired standard error, in pixel AUC or in
F1@0.5 (``compare-evals``, issue 14's rule).

    python -m tamperscope_training.select --shipped                       # the shipped model's figures
    python -m tamperscope_training.select --run runs/X --name X           # after evalrun.py
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

from .data import CACHE, REPO, table_only_auc
from .evalrun import RESULTS, compare_evals, eval_command

SELECT = CACHE / "select"
SETS = {
    "twins_val": ["tamperscope_training.selfsplice", "--split", "val", "--for-evaluation", "--pairs-per-host", "1",
                  "--seed", "66", "--exact-fraction", "0.5", "--fresh-fraction", "0.5", "--fresh-textured"],
    "photos": ["tamperscope_training.synth", "--count", "240", "--seed", "77", "--photo-dirs", "kodak24,sunhays80"],
}
MAPS = ["cam2", "cam3", "cam4", "fused", "refined:deeplabv3:paper", "prior", "refined_dq:deeplabv3:normalized",
        "compression", "baseline:centre", "baseline:ela"]
DEFAULT_MAPS = ("prior", "refined_dq:deeplabv3:normalized")


def ensure_set(name: str) -> Path:
    """The selection set ``name``, generated on first use (deterministic: the same files every time)."""
    out = SELECT / name
    if not (out / "labels.csv").exists():
        module, *args = SETS[name]
        subprocess.run([sys.executable, "-m", module, "--out", str(out)] + args, check=True, cwd=REPO / "training")
    return out


def run_eval(dataset: Path, manifest: Path, models: Path, classifiers: list[str], out: Path) -> dict:
    """``tamperscope eval`` with DeepLabV3 (the default segmenter) -> its JSON (cached in ``out``)."""
    if not out.exists():
        subprocess.run(eval_command(dataset, manifest, models, classifiers, ["deeplabv3"], out), check=True)
    return json.loads(out.read_text())


def pairs_higher(ev: dict, dataset: Path) -> float | None:
    """Share of twins whose manipulated member gets the higher mean probability (ties count half)."""
    with open(dataset / "labels.csv") as f:
        pair_of = {r["image"]: r.get("pair") for r in csv.DictReader(f)}
    twins: dict = {}
    for r in ev["per_image"]:
        p = pair_of.get(r["image"])
        if p and r.get("probability") is not None:
            twins.setdefault(p, {})[int(r["manipulated"])] = r["probability"]
    full = [t for t in twins.values() if len(t) == 2]
    if not full:
        return None
    return round(sum(1.0 if t[1] > t[0] else 0.5 if t[1] == t[0] else 0.0 for t in full) / len(full), 4)


def summarise(ev: dict, dataset: Path | None) -> dict:
    il = ev["image_level"]
    variants = {k: round(v["auc"], 4) for k, v in il["variants"].items()}
    cams = [k for k in variants if k.startswith("b")]
    pl = ev["pixel_level"]
    pix = {m: {"auc": round(pl[m]["auc"], 4), "f1": round(pl[m]["f1"], 4), "auc_se": round(pl[m]["auc_se"], 4)}
           for m in MAPS if m in pl}
    out = {"images": ev["images_analysed"], "image_auc_mean_probability": round(il["auc"], 4),
           "image_auc": variants, "best_variant_image_auc": max(variants[k] for k in cams) if cams else None,
           "pixel": pix}
    if all(m in pix for m in ("cam2", "cam3", "cam4", "fused", "refined:deeplabv3:paper")):
        out["claims"] = {
            "fused_beats_each_scale": all(pix["fused"]["auc"] > pix[c]["auc"] for c in ("cam2", "cam3", "cam4")),
            "refinement_beats_raw_map": pix["refined:deeplabv3:paper"]["auc"] > pix["fused"]["auc"],
        }
    if dataset is not None:
        with open(dataset / "labels.csv") as f:
            rows = list(csv.DictReader(f))
        out["table_only_auc"] = round(table_only_auc([dataset / r["image"] for r in rows],
                                                     [int(r["label"]) for r in rows],
                                                     [r.get("pair") or i for i, r in enumerate(rows)]), 4)
        out["manipulated_twin_higher"] = pairs_higher(ev, dataset)
    return out


def compare(a: Path, b: Path, out: Path) -> dict:
    compare_evals(a, b, out, quiet=True)
    return json.loads(out.read_text())


def paired(cmp: dict, key: str, metric: str = "auc") -> tuple[float, float] | None:
    """(mean paired difference B - A, its standard error) of one map's pixel AUC (or, with
    ``metric="f1"``, its F1@0.5) in a compare-evals result; None when it was not paired."""
    d, se = ("diff", "diff_se") if metric == "auc" else ("f1_diff", "f1_diff_se")
    for row in cmp["pixel_level"]:
        if row["map"] == key and row.get(se) is not None:
            return round(row[d], 4), round(row[se], 4)
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--shipped", action="store_true", help="score the shipped classifier (models/)")
    who.add_argument("--run", help="a training run folder that evalrun.py has exported (model.onnx, manifest.toml)")
    ap.add_argument("--name", help="the run's short name (as given to evalrun.py)")
    args = ap.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.shipped:
        name, manifest, models = "shipped", REPO / "models" / "manifest.toml", REPO / "models"
        classifiers = [f"wcbnet-b{v}" for v in (2, 3, 4)]
        casia = REPO / "models" / "measured.json"
    else:
        if not args.name:
            ap.error("--run needs --name")
        run = Path(args.run)
        name, manifest, models = args.name, run / "manifest.toml", run
        if not manifest.exists():
            raise SystemExit(f"{manifest} missing: run evalrun.py --run {run} --name {name} first")
        import tomllib
        classifiers = [m["name"] for m in tomllib.loads(manifest.read_text())["model"] if m["role"] == "classifier"]
        casia = RESULTS / f"eval_casia_val_{name}.json"
    res = {"model": name, "rule": __doc__.split("The rule")[1].split("\n\n")[0].strip(), "sets": {}}
    for s in SETS:
        ds = ensure_set(s)
        ev = run_eval(ds, manifest, models, classifiers, RESULTS / f"select_{s}_{name}.json")
        res["sets"][s] = summarise(ev, ds)
    if casia.exists():
        res["casia_val_reported_not_chosen_on"] = summarise(json.loads(casia.read_text()), None)
    if not args.shipped:
        ship = json.loads((RESULTS / "selection_shipped.json").read_text()) if (RESULTS / "selection_shipped.json").exists() \
            else None
        if ship is None:
            raise SystemExit("score the shipped model first: select --shipped")
        cmp = {s: compare(RESULTS / f"select_{s}_shipped.json", RESULTS / f"select_{s}_{name}.json",
                          RESULTS / f"compare_select_{s}_shipped_vs_{name}.json") for s in SETS}
        casia_cmp = json.loads((RESULTS / f"compare_shipped_vs_{name}.json").read_text()) \
            if (RESULTS / f"compare_shipped_vs_{name}.json").exists() else None
        best = lambda r: sum(r["sets"][s]["best_variant_image_auc"] for s in SETS) / len(SETS)  # noqa: E731
        c1 = best(res) > best(ship)
        c2 = all(res["sets"][s]["pixel"]["fused"]["auc"] > ship["sets"][s]["pixel"]["fused"]["auc"] for s in SETS)
        guard = {}
        if casia_cmp is not None:
            for m in DEFAULT_MAPS:
                for metric in ("auc", "f1"):
                    d = paired(casia_cmp, m, metric)
                    guard[f"{m} {metric}"] = None if d is None else {"diff": d[0], "se": d[1], "ok": d[0] >= -d[1]}
        c3 = bool(guard) and all(g is not None and g["ok"] for g in guard.values())
        res["against_shipped"] = {
            "best_variant_image_auc_neutral": [round(best(ship), 4), round(best(res), 4)],
            "fused_pixel_auc": {s: [ship["sets"][s]["pixel"]["fused"]["auc"], res["sets"][s]["pixel"]["fused"]["auc"]]
                                for s in SETS},
            "paired_pixel_on_sets": {s: {m: paired(cmp[s], m) for m in ("fused", "refined_dq:deeplabv3:normalized")}
                                     for s in SETS},
            "casia_val_guard": guard,
            "rule": {"1_image_auc": c1, "2_pixel_auc_of_A": c2, "3_casia_guard": c3},
            "preferred": c1 and c2 and c3,
        }
    out = RESULTS / f"selection_{name}.json"
    out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
