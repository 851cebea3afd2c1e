"""Training data: signed-ELA tensors computed by the app's own binary (``tamperscope ela``).

Never re-implements ELA: ``ela_cache`` runs
``target/release/tamperscope ela --list LIST --out-dir DIR --quality 90 --size 384 --scale 1``
and loads ``DIR/<stem>.npy`` (float32 [3,384,384], raw E = I - JPEG90(I), area-resized).
The model input is E / ela_scale.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TAMPERSCOPE_SHARED", "/work/shared"))
# Overridable so that a training bundle (gpu_bundle.py) runs the same code outside a checkout.
CACHE = Path(os.environ.get("TAMPERSCOPE_CACHE", REPO / ".cache"))
BINARY = Path(os.environ.get("TAMPERSCOPE_BIN", REPO / "target" / "release" / "tamperscope"))


LOCAL_SPLITS = ("synth", "casia_rq", "casia_pairs")  # made by this package under .cache/


def is_local(split: str) -> bool:
    """Splits this package makes under .cache/ (``casia_pairs*``, ``casia_rq*``, ``synth*``: selfsplice.py,
    recompress.py and synth.py outputs under any suffix; ``bundle_*``: gpu_bundle.py's held-out part)."""
    return split in LOCAL_SPLITS or split.startswith(("casia_pairs", "casia_rq", "synth", "bundle_"))


RECIPE = "recipe.json"


def git_commit() -> str:
    """HEAD of the checkout, or ``TAMPERSCOPE_COMMIT`` (a bundle has no .git; the machine may have no git)."""
    if os.environ.get("TAMPERSCOPE_COMMIT"):
        return os.environ["TAMPERSCOPE_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "unknown"


def write_split(out: Path, rows: list[dict], module: str, argv, args) -> None:
    """A generated split's labels.csv (columns from the first row) and, beside it, the exact command,
    arguments and commit that made it, so a model trained on it can name its data's recipe (train.py copies
    it into the run summary)."""
    with open(Path(out) / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    argv = list(sys.argv[1:] if argv is None else argv)
    recipe = {"command": " ".join(["python", "-m", module] + argv), "args": vars(args), "commit": git_commit()}
    (Path(out) / RECIPE).write_text(json.dumps(recipe, indent=1))


def read_recipe(split: str) -> dict | None:
    """The recipe a generated split was made with, or None (CASIA's own splits, or made before recipes)."""
    if not is_local(split):
        return None
    path = labels_csv(split).parent / RECIPE
    return json.loads(path.read_text()) if path.exists() else None


def read_labels(csv_path: Path) -> list[tuple[Path, int, str]]:
    root = csv_path.parent
    with open(csv_path) as f:
        return [(root / r["image"], int(r["label"]), r["kind"]) for r in csv.DictReader(f)]


def codec_ident(binary: Path | None = None) -> str:
    """``tamperscope ela --print-codec`` of ``binary`` (default: the app's release binary)."""
    return subprocess.run([str(binary or BINARY), "ela", "--print-codec"], check=True, capture_output=True,
                          text=True).stdout.strip()


@functools.cache
def ela_codec() -> str:
    """The binary's ELA codec identity (``tamperscope ela --print-codec``), as a short key."""
    return hashlib.sha256(codec_ident().encode()).hexdigest()[:8]


def run_ela(images, out_dir: Path, list_file: Path, binary: Path | None = None, quality: int = 90,
            size: int = 384) -> None:
    """``tamperscope ela`` (``binary``, default the app's release binary) on ``images``: writes
    ``out_dir/<stem>.npy``, float32 [3,size,size], raw E = I - JPEG_quality(I), area-resized."""
    Path(list_file).write_text("".join(f"{p}\n" for p in images))
    subprocess.run([str(binary or BINARY), "ela", "--list", str(list_file), "--out-dir", str(out_dir),
                    "--quality", str(quality), "--size", str(size), "--scale", "1"], check=True,
                   stdout=subprocess.DEVNULL)


def ela_cache(images: list[Path], name: str, quality: int = 90, size: int = 384) -> list[Path]:
    """Signed-ELA .npy files for ``images`` (computed once by the app's binary), cached under a
    folder keyed by the binary's ELA codec, so tensors of another codec are never reused."""
    out = CACHE / "ela" / f"{name}@{ela_codec()}"
    npys = [out / (p.stem + ".npy") for p in images]
    if not all(n.exists() for n in npys):
        out.mkdir(parents=True, exist_ok=True)
        run_ela(images, out, CACHE / f"{name}_list.txt", quality=quality, size=size)
    return npys


def labels_csv(split: str) -> Path:
    """Where ``split``'s labels.csv lives: under .cache/ for this package's splits, else CASIA in shared/."""
    return CACHE / split / "labels.csv" if is_local(split) else \
        SHARED / "data" / "casia1" / split.split("_")[1] / "labels.csv"


def load_split(split: str) -> tuple[list[Path], np.ndarray, list[str]]:
    """split: casia_train | casia_val | synth* (``.cache/synth*``, synth.py) | casia_rq (``.cache/casia_rq``,
    recompress.py) | casia_pairs* (``.cache/casia_pairs*``, selfsplice.py)."""
    rows = read_labels(labels_csv(split))
    npys = ela_cache([r[0] for r in rows], split)
    return npys, np.array([r[1] for r in rows], np.float32), [r[2] for r in rows]


def read_groups(split: str) -> list[str]:
    """One group name per image of ``split``: images that share a ``pair`` column (selfsplice.py's
    authentic / manipulated twins) share a group; every other image is a group of its own."""
    with open(labels_csv(split)) as f:
        return [f"{split}:pair{r['pair']}" if r.get("pair") else f"{split}:{i}" for i, r in enumerate(csv.DictReader(f))]


def table_only_auc(paths, labels, groups=None) -> float:
    """How much the luminance quantisation table alone gives the label away: the image-level AUC of
    predicting each image by the label rate of the images of *other groups* that share its exact table
    (0.5 when none does). Groups (``read_groups``) keep selfsplice twins, which share their table by
    construction, from predicting each other. 0.5: the tables carry no label; CASIA v1 train as it is
    scores near 1 (issue 19 asks for a training set near 0.5). Non-JPEG files share one empty table."""
    from PIL import Image

    keys = []
    for p in paths:
        with Image.open(p) as im:
            q = getattr(im, "quantization", None) or {}
        keys.append(tuple(q.get(0, ())))
    y = np.asarray(labels, np.float64)
    groups = list(range(len(y))) if groups is None else list(groups)
    pos: dict = {}
    cnt: dict = {}
    for k, g, v in zip(keys, groups, y):
        pos[k] = pos.get(k, 0.0) + v
        cnt[k] = cnt.get(k, 0) + 1
        pos[(k, g)] = pos.get((k, g), 0.0) + v
        cnt[(k, g)] = cnt.get((k, g), 0) + 1
    score = []
    for k, g in zip(keys, groups):
        n = cnt[k] - cnt[(k, g)]
        score.append((pos[k] - pos[(k, g)]) / n if n else 0.5)
    return float(metrics(np.array(score), y)["auc"])


def metrics(p: np.ndarray, y: np.ndarray) -> dict:
    """Image-level AUC (rank statistic, ties averaged), accuracy and F1 at p >= 0.5."""
    from scipy.stats import rankdata

    p = np.asarray(p, np.float64)
    y = np.asarray(y).astype(bool)
    r = rankdata(p)
    npos, nneg = y.sum(), (~y).sum()
    auc = (r[y].sum() - npos * (npos + 1) / 2) / (npos * nneg)
    pred = p >= 0.5
    tp, fp, fn = (pred & y).sum(), (pred & ~y).sum(), (~pred & y).sum()
    f1 = 2 * tp / max(1, 2 * tp + fp + fn)
    return {"auc": round(float(auc), 4), "acc": round(float((pred == y).mean()), 4), "f1": round(float(f1), 4),
            "n": int(len(y)), "n_pos": int(npos)}
